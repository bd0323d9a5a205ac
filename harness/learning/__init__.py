"""The learning layer (layer 3 of docs/architecture.md): windows and normalizers, the networks, the diffusion
formulations and samplers, the training objectives, the trainer, the noise-level classifier, checkpoints
and the policy that runs a checkpoint. It imports the core toolkit (harness/core) and sim_envs only."""
