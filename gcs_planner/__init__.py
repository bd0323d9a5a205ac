"""GCS contact planner for the T, plan replay into demonstrations, and the sim-data generator."""
