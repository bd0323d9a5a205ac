"""The Drake diagram: table, T slider, cylinder pusher on a PD position controller, optional camera.

Design (measured, see benchmarks/sim_speed.py and docs/_readme_sim_envs.md):
- The slider is a free body (6 DOF) resting on the table under gravity, so "rests on the table" and
  table friction come from Drake's contact model, not from a hand-written friction law.
- Point model: the table is a half space and the slider touches it through small spheres inset under
  the vertices of the T's outline (sphere/half-space contact is analytic and cheap, and the normal load
  spreads over the outline, approximating the friction torque of a flat base). The T's boxes
  collide only with the pusher. Hydroelastic model: the T's boxes are rigid hydroelastic bodies pressing
  on a compliant table (a pressure patch over the whole base) and the pusher is a compliant cylinder.
- The pusher is a cylinder on two prismatic joints (x, y) driven by Drake's implicit PD actuators
  (JointActuator controller gains, with a force limit): the "position controller that tracks the
  commanded action" is solved inside the discrete contact solver, so it is stable at a 5 ms step.
- Discrete solver "lagged" (the SAP family, implicit in contact and actuation) at a 5 ms step: a 0.1 kg
  slider on stiff contacts needs no tiny step (20 plant updates per 0.1 s control step). Measured
  (benchmarks/sim_speed.py, 2 busy cores): 35-70x real time for the target preset, policy included;
  1 ms runs ~9x, 2 ms ~30x; replaying 30 s of pushing at 5 ms ends within ~1 mm / 3 deg of 1 ms. Full
  SAP and "similar" are as fast but let the T sink ~0.2 mm and tilt ~0.2 deg; "lagged" keeps it flat.
- Friction: Drake combines two geometries' coefficients as 2ab/(a+b). The slider's geometries all get
  B = max(mu_st, mu_ps); table and pusher get the value that makes the combination exactly mu_st and mu_ps.
"""
from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
from pydrake.geometry import (AddCompliantHydroelasticProperties, AddCompliantHydroelasticPropertiesForHalfSpace,
                              AddContactMaterial, AddRigidHydroelasticProperties, Box, ClippingRange,
                              CollisionFilterDeclaration, ColorRenderCamera, Cylinder, DepthRange, DepthRenderCamera,
                              GeometrySet, HalfSpace, LightParameter, MakeRenderEngineVtk, MeshcatVisualizer,
                              MeshcatVisualizerParams, ProximityProperties, RenderCameraCore, RenderEngineVtkParams,
                              Rgba, SceneGraph, Sphere)
from pydrake.math import RigidTransform, RotationMatrix
from pydrake.multibody.plant import AddMultibodyPlant, CoulombFriction, MultibodyPlant, MultibodyPlantConfig
from pydrake.multibody.tree import PdControllerGains, PrismaticJoint, RotationalInertia, SpatialInertia
from pydrake.systems.framework import Diagram, DiagramBuilder
from pydrake.systems.sensors import CameraInfo, RgbdSensor

from sim_envs.config import PhysicsConfig
from sim_envs.visual import CameraConfig, VisualConfig, camera_rotation
from sim_envs.geometry import PUSHER, T_SLIDER, TASK, Pusher, TSlider, Task, signed_distance_body

BASE_SPHERE_RADIUS = 0.002       # m, the point-contact feet under the T
PUSHER_LIFT = 0.001              # m, gap between the pusher's bottom and the table
SLAB_THICKNESS = 0.05            # m, compliant table slab (hydroelastic model)
RENDERER = "vtk"
DEFAULT_LOOK = VisualConfig("default")   # the look of an env built without a visual preset


class _DropDeformableHalfSpaceWarning(logging.Filter):
    """Drake warns at every build that a rigid half space takes no part in deformable contact; we have no
    deformable bodies, so the line is noise on every command's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "half spaces are not currently supported for deformable" not in record.getMessage()


logging.getLogger("drake").addFilter(_DropDeformableHalfSpaceWarning())

# Without a GPU, EGL renders with Mesa's llvmpipe, which by default splits every frame over a pool of
# rasterizer threads. For our small frames the threads' hand-offs cost more than the drawing: a 96x96 frame
# took 2.2 ms with the pool and 1.0 ms drawn in the calling thread (LP_NUM_THREADS=0; 2-core Intel Xeon,
# 2026-12-06), and the pool also fights the lockstep workers for the cores. The pixels are the same bytes
# either way (tests/test_pixels.py). Mesa reads the variable when the first renderer starts, so it is set
# here, before any scene is built; a value the user set wins, and a GPU driver ignores it.
os.environ.setdefault("LP_NUM_THREADS", "0")


@dataclasses.dataclass
class Scene:
    """Handles into a built diagram, so the env never looks anything up by name at run time."""
    diagram: Diagram
    plant: MultibodyPlant
    scene_graph: SceneGraph
    slider: object            # RigidBody
    pusher_x: PrismaticJoint
    pusher_y: PrismaticJoint
    pusher_instance: object   # ModelInstanceIndex
    cameras: dict[str, RgbdSensor]   # observation key -> its camera
    visualizer: object | None  # MeshcatVisualizer


def build_scene(config: PhysicsConfig, cameras: dict[str, CameraConfig] | None = None, meshcat=None,
                look: VisualConfig = DEFAULT_LOOK, slider: TSlider = T_SLIDER, pusher: Pusher = PUSHER,
                task: Task = TASK) -> Scene:
    """Build and finalize the diagram for one physics preset, coloured and lit by `look`, with one camera
    per entry of `cameras` (observation key -> camera; none = no renderer at all)."""
    builder = DiagramBuilder()
    plant_config = MultibodyPlantConfig(
        time_step=config.time_step,
        contact_model="point" if config.contact_model == "point" else "hydroelastic_with_fallback",
        discrete_contact_approximation=config.contact_approximation,
        use_sampled_output_ports=False,   # outputs (poses for rendering) follow teleports at once
    )
    plant, scene_graph = AddMultibodyPlant(plant_config, builder)
    mu_slider, mu_table, mu_pusher = _friction_split(config.mu_slider_table, config.mu_pusher_slider)

    table_ids = _add_table(plant, config, mu_table, _rgba(look.table_color))
    if look.show_goal:
        _add_goal_marker(plant, slider, task, _rgba(look.goal_color))
    body, box_ids, feet_ids = _add_slider(plant, config, slider, mu_slider, _rgba(look.slider_color))
    pusher_instance, joint_x, joint_y, pusher_ids = _add_pusher(plant, config, pusher, mu_pusher,
                                                                _rgba(look.pusher_color))
    plant.Finalize()

    # Contacts that must not happen: the T's boxes touch only the pusher (point model), the pusher never
    # touches the table, the feet never touch the pusher.
    declare = CollisionFilterDeclaration()
    if config.contact_model == "point":
        declare.ExcludeBetween(GeometrySet(box_ids), GeometrySet(table_ids))
    declare.ExcludeBetween(GeometrySet(pusher_ids), GeometrySet(table_ids))
    if feet_ids:
        declare.ExcludeBetween(GeometrySet(pusher_ids), GeometrySet(feet_ids))
    scene_graph.collision_filter_manager().Apply(declare)

    sensors = {}
    if cameras:
        scene_graph.AddRenderer(RENDERER, MakeRenderEngineVtk(_render_params(look)))
        pusher_frame = plant.GetBodyFrameIdOrThrow(plant.GetBodyByName("pusher", pusher_instance).index())
        sensors = {key: _add_camera(builder, scene_graph, camera, pusher_frame) for key, camera in cameras.items()}
    visualizer = None
    if meshcat is not None:
        visualizer = MeshcatVisualizer.AddToBuilder(builder, scene_graph, meshcat, MeshcatVisualizerParams())
        # Look at the workspace from the -y side: screen right is +x, screen up is roughly +y, so the
        # arrow keys of browser teleop move the pusher the way they point.
        x0, x1, y0, y1 = task.workspace
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0])
        meshcat.SetCameraPose(centre + np.array([0.0, -0.55, 0.75]), centre)
    diagram = builder.Build()
    return Scene(diagram, plant, scene_graph, body, joint_x, joint_y, pusher_instance, sensors, visualizer)


def resting_penetration(config: PhysicsConfig, slider: TSlider = T_SLIDER) -> float:
    """How far (m) the slider's base sinks into the table at rest. Episodes start there: starting higher
    drops the T, starting deeper makes the first contact forces (and, with the lagged solver, the first
    friction bounds) far too large."""
    weight = config.slider_mass * 9.81
    if config.contact_model == "point":
        k = config.contact_stiffness / 2       # two equal stiffnesses in series (foot and table)
        return weight / (config.base_contacts * k)
    area = sum(b.size[0] * b.size[1] for b in slider.boxes)
    return weight * SLAB_THICKNESS / (config.hydroelastic_modulus * area)


def _friction_split(mu_st: float, mu_ps: float) -> tuple[float, float, float]:
    """Per-geometry coefficients (slider, table, pusher) whose pairwise combinations are mu_st and mu_ps."""
    b = max(mu_st, mu_ps, 1e-6)
    return b, mu_st * b / (2 * b - mu_st), mu_ps * b / (2 * b - mu_ps)


def _proximity(config: PhysicsConfig, mu: float) -> ProximityProperties:
    props = ProximityProperties()
    AddContactMaterial(dissipation=config.contact_dissipation, point_stiffness=config.contact_stiffness,
                       friction=CoulombFriction(mu, mu), properties=props)
    return props


def _rgba(rgb) -> np.ndarray:
    return np.array([*rgb, 1.0])


def _add_table(plant, config, mu_table, color) -> list:
    world = plant.world_body()
    props = _proximity(config, mu_table)
    if config.contact_model == "hydroelastic":
        AddCompliantHydroelasticPropertiesForHalfSpace(SLAB_THICKNESS, config.hydroelastic_modulus, props)
    table = plant.RegisterCollisionGeometry(world, RigidTransform(), HalfSpace(), "table", props)
    # A visible table top (a half space does not render everywhere).
    x_c = sum(TASK.workspace[:2]) / 2
    plant.RegisterVisualGeometry(world, RigidTransform([x_c, 0.0, -0.005]), Box(1.2, 1.2, 0.01), "table_visual",
                                 color)
    return [table]


def _add_goal_marker(plant, slider: TSlider, task: Task, color) -> None:
    """A thin green T at the goal pose, drawn on the table (visual only, no collision)."""
    gx, gy, gth = task.goal
    X_WG = RigidTransform(RotationMatrix.MakeZRotation(gth), [gx, gy, 0.0005])
    for i, box in enumerate(slider.boxes):
        X_GB = RigidTransform([box.center[0], box.center[1], 0.0])
        plant.RegisterVisualGeometry(plant.world_body(), X_WG @ X_GB, Box(*box.size, 0.001), f"goal_{i}",
                                     color)


def _add_slider(plant, config, slider: TSlider, mu_slider, color):
    """The T: body origin at the geometric centroid, mid-height; true mass and centre of mass from config."""
    instance = plant.AddModelInstance("slider")
    h = slider.height
    # Uniform-density inertia about the T's own centroid, then moved to the configured centre of mass.
    com = np.array([config.com_offset[0], config.com_offset[1], 0.0])
    inertia = SpatialInertia.MakeFromCentralInertia(
        config.slider_mass, com, _rot_inertia(_t_unit_inertia(slider), config.slider_mass))
    body = plant.AddRigidBody("slider", instance, inertia)
    box_ids, feet_ids = [], []
    for i, box in enumerate(slider.boxes):
        X = RigidTransform([box.center[0], box.center[1], 0.0])
        shape = Box(box.size[0], box.size[1], h)
        props = _proximity(config, mu_slider)
        if config.contact_model == "hydroelastic":
            AddRigidHydroelasticProperties(props)
        box_ids.append(plant.RegisterCollisionGeometry(body, X, shape, f"slider_box_{i}", props))
        plant.RegisterVisualGeometry(body, X, shape, f"slider_visual_{i}", color)
    if config.contact_model == "point":
        r = BASE_SPHERE_RADIUS
        for i, (px, py) in enumerate(_foot_points(slider, config.base_contacts, r)):
            X = RigidTransform([px, py, -h / 2 + r])
            feet_ids.append(plant.RegisterCollisionGeometry(body, X, Sphere(r), f"slider_foot_{i}",
                                                            _proximity(config, mu_slider)))
    return body, box_ids, feet_ids


def _t_unit_inertia(slider: TSlider) -> np.ndarray:
    """3x3 rotational inertia per unit mass of the uniform T about its centroid (body axes)."""
    area = sum(b.size[0] * b.size[1] for b in slider.boxes)
    h = slider.height
    total = np.zeros((3, 3))
    for box in slider.boxes:
        w = box.size[0] * box.size[1] / area          # mass fraction
        a, b = box.size
        cx, cy = box.center
        I_box = w / 12 * np.diag([b * b + h * h, a * a + h * h, a * a + b * b])
        d = np.array([cx, cy, 0.0])
        total += I_box + w * (d @ d * np.eye(3) - np.outer(d, d))
    return total


def _rot_inertia(unit: np.ndarray, mass: float) -> RotationalInertia:
    I = unit * mass
    return RotationalInertia(I[0, 0], I[1, 1], I[2, 2], I[0, 1], I[0, 2], I[1, 2])


def _foot_points(slider: TSlider, n: int, r: float) -> np.ndarray:
    """(n, 2) body-frame xy of the base contact spheres: at the outline's vertices (and, for n=16, the
    midpoints of its edges), moved inside by r so that no sphere sticks out past the T's sides."""
    outline = slider.outline()
    points = list(outline)
    if n == 16:
        points += list((outline + np.roll(outline, -1, axis=0)) / 2)
    feet = []
    for p in points:
        candidates = [p + r * np.array([sx, sy]) for sx in (-1, 1) for sy in (-1, 1)] + \
                     [p + r * np.array(d) for d in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        inside = [c for c in candidates if signed_distance_body(c, slider) <= -r + 1e-9]
        # The least-deep valid candidate keeps the foot as close to the edge as possible.
        feet.append(max(inside, key=lambda c: signed_distance_body(c, slider)))
    return np.array(feet)


def _add_pusher(plant, config, pusher: Pusher, mu_pusher, color):
    """Cylinder on prismatic x then y joints, each with an implicit PD actuator and a force limit."""
    instance = plant.AddModelInstance("pusher")
    carriage = plant.AddRigidBody("pusher_carriage", instance,
                                  SpatialInertia.SolidSphereWithMass(0.1 * config.pusher_mass, 0.01))
    body = plant.AddRigidBody("pusher", instance,
                              SpatialInertia.SolidCylinderWithMass(config.pusher_mass, pusher.radius,
                                                                   pusher.height, [0, 0, 1]))
    joint_x = plant.AddJoint(PrismaticJoint("pusher_x", plant.world_frame(), carriage.body_frame(), [1, 0, 0]))
    joint_y = plant.AddJoint(PrismaticJoint("pusher_y", carriage.body_frame(), body.body_frame(), [0, 1, 0]))
    gains = PdControllerGains(p=config.controller_kp, d=config.controller_kd)
    for joint in (joint_x, joint_y):
        actuator = plant.AddJointActuator(f"{joint.name()}_motor", joint, config.max_force)
        actuator.set_controller_gains(gains)
    X = RigidTransform([0, 0, PUSHER_LIFT + pusher.height / 2])
    props = _proximity(config, mu_pusher)
    if config.contact_model == "hydroelastic":
        AddCompliantHydroelasticProperties(pusher.radius / 5, config.hydroelastic_modulus, props)
    shape = Cylinder(pusher.radius, pusher.height)
    pusher_id = plant.RegisterCollisionGeometry(body, X, shape, "pusher", props)
    plant.RegisterVisualGeometry(body, X, shape, "pusher_visual", color)
    return instance, joint_x, joint_y, [pusher_id]


def _render_params(look: VisualConfig) -> RenderEngineVtkParams:
    """One renderer per scene, shared by its cameras: the look's background and light (intensity 0 keeps
    VTK's default, a light at the camera)."""
    params = RenderEngineVtkParams()
    params.default_clear_color = np.asarray(look.background, float)
    params.lights = [LightParameter(type="directional", frame="world", intensity=light.intensity,
                                    color=Rgba(*light.color, 1.0),
                                    direction=np.asarray(light.direction, float) / np.linalg.norm(light.direction))
                     for light in look.lights]
    return params


def camera_pose(camera: CameraConfig) -> RigidTransform:
    """X_WB of a camera's sensor body (its frame is Drake's camera frame: x right, y down, z forward)."""
    return RigidTransform(RotationMatrix(camera_rotation(camera.position, camera.look_at, camera.up)),
                          np.asarray(camera.position, float))


def color_camera(camera: CameraConfig) -> ColorRenderCamera:
    """The colour camera's intrinsics (size and field of view) on the scene's renderer."""
    height, width = (int(s) for s in camera.size)
    if camera.fov_x is None:
        info = CameraInfo(width, height, np.radians(camera.fov_y))
    else:   # non-square pixels: focal lengths from each field of view, principal point at the centre
        fx = width / 2 / np.tan(np.radians(camera.fov_x) / 2)
        fy = height / 2 / np.tan(np.radians(camera.fov_y) / 2)
        info = CameraInfo(width, height, fx, fy, (width - 1) / 2, (height - 1) / 2)
    core = RenderCameraCore(RENDERER, info, ClippingRange(0.02, 5.0), RigidTransform())
    return ColorRenderCamera(core, False)


def _add_camera(builder, scene_graph, camera: CameraConfig, pusher_frame) -> RgbdSensor:
    color = color_camera(camera)
    depth = DepthRenderCamera(color.core(), DepthRange(0.03, 4.5))
    parent = pusher_frame if camera.parent == "pusher" else scene_graph.world_frame_id()
    sensor = RgbdSensor(parent, camera_pose(camera), color, depth)
    builder.AddSystem(sensor)
    builder.Connect(scene_graph.get_query_output_port(), sensor.query_object_input_port())
    return sensor
