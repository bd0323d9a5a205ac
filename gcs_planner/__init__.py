"""GCS contact planner for the T, plan replay into demonstrations, and the sim-data generator.

Modules, in the order a plan is made (docs/gcs_planner.md explains the formulation):
  config.PlannerConfig        every setting of the planner
  mechanics                   faces, limit surface, motion cones, SE(2) arcs, twist -> push
  free_space.FreeSpace        collision-free pusher paths around the T (body frame)
  gcs.solve_modes             the graph of convex sets, its relaxation, candidate mode sequences
  polish.polish               exact-rotation knots for one mode sequence (sequential convex programs)
  plan.Plan / plan.assemble   the timed, densely sampled plan; .npz round trip
  verify.verify               independent check of a plan
  planner.Planner             all of the above with fallbacks: Planner().plan(start_pose) -> PlanResult
  replay                      plan -> demonstration (kinematic | physics) through PushTEnv
  generate                    GenSimConfig, generate_episode(seed, cfg), fill_store(out, cfg)
  show.plot_plan              matplotlib picture of a plan
"""
