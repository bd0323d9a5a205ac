"""Drake planar-pushing environments: the T slider, the cylinder pusher, physics presets, success.

Modules (import them directly; importing this package does not load Drake):
  geometry        task geometry and plane helpers (single source of truth)
  initial_states  sample_initial_pose(seed): the seeded starts shared by every part
  config          PhysicsConfig, load_preset(name_or_path, overrides), preset_names()
  visual          VisualConfig, load_visual(name_or_path): colours, lights, cameras (sim_envs/visuals/)
  scene           builds the Drake diagram (plant, contact, PD pusher, cameras, Meshcat)
  env             PushTEnv: reset(seed) / step(action) at 10 Hz
  vector_env      VectorEnv: K envs in lockstep, in-process or over worker processes
  scripted        ScriptedPusher: a simple state-based pushing policy
  rollout         run_episode(env, seed, policy): one timed closed-loop episode
  recording       Meshcat HTML and MP4/GIF saving
"""
