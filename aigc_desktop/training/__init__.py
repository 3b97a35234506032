"""Training: data sets (emoji or a folder of images + captions), trainers for the diffusion, StyleGAN and VAE
default models, and quality metrics. Torch is imported inside the modules that need it, never here."""
