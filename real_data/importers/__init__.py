"""Import real robot logs into the dataset format (domain "real", source "imported").

    summary = import_logs("logs/real.zarr.zip", "diffusion-policy", "data/real.zarr", mapping_path=None)

The source is read and validated completely before anything is written; the output is written under a
temporary name and renamed into place, so a bad source or an interruption leaves `out` untouched.
The summary names every source key and what became of it (imported as, kept as an extra, used for
bookkeeping, or dropped and why); the same list is kept in the output's attrs (generator.source_info.keys).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from harness.core.atomic import atomic_path
from harness.core.errors import UserError
from harness.core.locks import hold_output_lock
from harness.core.store import is_image_key, open_group
from harness.core.writer import EpisodeWriter
from real_data.importers import resample
from real_data.importers.diffusion_policy import read_diffusion_policy
from real_data.importers.lerobot import read_lerobot
from real_data.importers.mapping import ImportMapping, load_mapping, mapping_dict, OUTPUT_HZ
from real_data.importers.source import Source

READERS = {"diffusion-policy": read_diffusion_policy, "lerobot": read_lerobot}
FORMATS = tuple(READERS)


@dataclasses.dataclass
class ImportSummary:
    out: Path
    n_episodes: int
    n_steps_in: int
    n_steps_out: int
    rate_in_hz: float
    images: bool
    fates: list[tuple[str, str]] = dataclasses.field(default_factory=list)   # (source key, what became of it)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"imported {self.n_episodes} episodes ({self.n_steps_in} source steps at {self.rate_in_hz:g} Hz "
               f"-> {self.n_steps_out} steps at {OUTPUT_HZ:g} Hz{', with images' if self.images else ''}) "
               f"into {self.out}"]
        width = max([len(k) for k, _ in self.fates] + [10])
        out += [f"  {key:<{width}}  {fate}" for key, fate in self.fates]
        out += [f"warning: {w}" for w in self.warnings]
        return out


def read_source(src, fmt: str, mapping: ImportMapping) -> Source:
    if fmt not in READERS:
        raise UserError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    return READERS[fmt](src, mapping)


def resample_episode(source: Source, index: int, out_hz: float = OUTPUT_HZ) -> dict[str, np.ndarray]:
    """Episode `index` of the source on the output grid: {agent_pos, slider_pose, action, [image]}."""
    ep = source.episodes[index]
    if resample.on_grid(ep.times, out_hz):
        data = {k: v.copy() for k, v in ep.lowdim.items()}
        if ep.load_image is not None:
            data["image"] = ep.load_image()
        data.update({k: s.load() for k, s in ep.streams.items()})
        return data
    grid = resample.output_times(ep.times, out_hz)
    data = {
        "agent_pos": resample.resample_lowdim(ep.times, ep.lowdim["agent_pos"], grid),
        "slider_pose": resample.resample_lowdim(ep.times, ep.lowdim["slider_pose"], grid, angle_column=2),
        "action": resample.resample_lowdim(ep.times, ep.lowdim["action"], grid),
    }
    if ep.load_image is not None:
        data["image"] = ep.load_image()[resample.hold_indices(ep.times, grid)]
    for key, stream in ep.streams.items():
        values = stream.load()
        data[key] = values[resample.hold_indices(ep.times, grid)] if is_image_key(key) else \
            resample.resample_any(ep.times, values, grid)
    return data


def import_logs(src, fmt: str, out, mapping_path=None, overwrite: bool = False, progress=None) -> ImportSummary:
    """Validate `src`, then write every episode to a new store at `out` (atomically)."""
    out = Path(out)
    mapping = load_mapping(fmt, mapping_path)
    _check_out(out, src, overwrite)
    source = read_source(src, fmt, mapping)       # every bad input is refused before anything is written
    with hold_output_lock(out, "import"):         # a second import into `out` is refused meanwhile
        _check_out(out, src, overwrite)           # (it may have finished since the first check)
        generator = {
            "importer": "real_data.importers", "format": fmt, "src": str(Path(src).resolve()),
            "mapping": mapping_dict(mapping), "rate_in_hz": source.rate_hz, "rate_out_hz": OUTPUT_HZ,
            "resample_method": resample.METHOD,
            "source_info": {**source.info, "keys": [list(f) for f in source.fates]},
        }
        n_out = 0
        bar = progress(total=len(source.episodes), desc="import", unit="ep") if progress else None
        try:
            with atomic_path(out) as tmp:
                # a cotrain export keeps what its data are (sim stays sim); anything else is real robot data
                origin = source.origin or {"domain": "real", "source": "imported", "env": "real", "env_params": {}}
                if source.origin:
                    generator["origin_generator"] = source.origin.get("generator")
                with EpisodeWriter(tmp, domain=origin["domain"], source=origin["source"], env=origin["env"],
                                   env_params=origin["env_params"], generator=generator) as writer:
                    for i, ep in enumerate(source.episodes):
                        data = resample_episode(source, i)
                        n_out += len(data["action"])
                        writer.add_episode(data, {"source_episode": ep.index, "source_length": ep.length, **ep.meta})
                        if bar:
                            bar.update(1)
        finally:
            if bar:
                bar.close()
    return ImportSummary(out=out, n_episodes=len(source.episodes),
                         n_steps_in=sum(e.length for e in source.episodes), n_steps_out=n_out,
                         rate_in_hz=source.rate_hz, images=source.image_shape is not None,
                         fates=list(source.fates), warnings=list(source.warnings))


def _check_out(out: Path, src, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise UserError(f"{out}: output exists (pass --overwrite to replace it)")
    if out.exists() and not _is_imported_store(out):   # --overwrite replaces only an earlier import
        raise UserError(f"{out}: exists and is not a store made by `cotrain import`; --overwrite will not "
                        "replace it")
    if Path(src).resolve() == out.resolve():
        raise UserError(f"{out}: output would replace the source")


def _is_imported_store(path: Path) -> bool:
    try:
        generator = open_group(path).attrs.get("generator")
        return isinstance(generator, dict) and generator.get("importer") == "real_data.importers"
    except UserError:
        return False


__all__ = ["FORMATS", "ImportSummary", "import_logs", "read_source", "resample_episode", "load_mapping"]
