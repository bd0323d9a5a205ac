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
  gym_env         PlanarPushingEnv: the task as the Gymnasium env `cotrain/PlanarPushing-v0`

Importing this package registers `cotrain/PlanarPushing-v0` with Gymnasium (without loading Drake), so
`import sim_envs; gym.make("cotrain/PlanarPushing-v0")` works, and so does
`gym.make("sim_envs:cotrain/PlanarPushing-v0")` in a process that has not imported it (a spawned worker).
"""
from sim_envs.gym_env import register as _register_gym_env

_register_gym_env()
