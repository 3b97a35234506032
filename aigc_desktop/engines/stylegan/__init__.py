"""StyleGAN2 / StyleGAN3 generators written from the papers, with safe loaders for NVIDIA pickles,
rosinality `.pt` files and our own safetensors + JSON format.

Importing this package loads no torch. Its command-line front is aigc_desktop/cli_stylegan.py (no argparse here).

    ops.py          bias_act, FIR up/down-sampling (upfirdn2d), conv2d_resample, modulated conv, filtered lrelu
    mapping.py      FullyConnectedLayer, MappingNetwork (z -> w, w_avg, truncation)
    stylegan2.py    StyleGAN2 synthesis (orig / skip / resnet), Conv2dLayer for discriminators
    stylegan3.py    StyleGAN3 synthesis (Fourier input, alias-free layers of the T and R configs)
    generator.py    Generator = mapping + synthesis, from_config / to_config
    safe_pickle.py  restricted unpickler for NVIDIA network pickles (never runs embedded source)
    loaders.py      NVIDIA .pkl, rosinality .pt, our safetensors + json; conversion
    sampling.py     seeds -> z (as NVIDIA's generate.py), truncation, style mixing, travel latents, 8-bit output
    engine.py       StyleGANEngine (the engine contract)
"""
