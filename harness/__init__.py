"""Diffusion-policy harness, in its layers: core/ (the toolkit and the dataset format), learning/ (networks,
formulations, objectives, trainer, classifier, policy), study/ (the experiment runner) and cli/ (`cotrain`)."""
