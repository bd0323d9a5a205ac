"""Diffusion-policy harness: dataset format, learning, the experiment runner and the `cotrain` CLI."""
