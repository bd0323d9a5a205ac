"""Drake planar-pushing environments: geometry, physics presets, the env, the vector env, recording."""
