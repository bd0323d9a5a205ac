"""The comparison study: `cotrain compare EXPERIMENT.yaml` (top layer; wires data, learning and evaluation).

One YAML file names the datasets, the methods with their settings, the training seeds, the training budget
and the evaluation. Running it:
  1. makes sure every dataset exists with enough episodes (the gen-sim / gen-teleop generators; resumable),
     and fits the study's one normalizer on them (normalizer.json: every sigma in the same units);
  2. runs the noise-level classifier once (`annotate`), shared by every run that needs sigma_n;
  3. trains and evaluates every (method, setting, training seed) in its own run folder; a finished run is
     never recomputed, a half-finished one resumes, a folder made by other settings is refused. Matched-alpha
     controls (alphas "matched_to <label>") train in a second wave, once that row's clean fraction is known;
  4. writes the table (markdown + CSV) and the plots under results/<study>/.

Modules, in the order a study uses them:
    config.py    the typed study config (StudyConfig) and `load_study`; its `eval:` part is
                 eval.evaluation.EvalSettings, the one type of evaluation settings (CLI, study, job)
    plan.py      methods x settings x seeds -> runs (RunSpec), each with its full TrainConfig
    run_spec.py  RunSpec (one run, typed; JSON at the job boundary) and RunFolder (every path of a run folder)
    jobs.py      the job bodies (generate a dataset, annotate, train + evaluate a run): plain functions of
                 JSON-able arguments, what an executor runs
    job.py       Job (a module-level function + its arguments) and JobResult, shared by both engines
    executor.py  where jobs run (local processes; ray_executor.py: Ray tasks)
    runner.py    the stages above, in order, and `report_only`
    fingerprint.py  the data's bytes and the environment at the first session (fingerprint.json)
    report.py    table.md / table.csv and plots/ from the finished runs
    outcomes.py  the finished runs without weights (--export-outcomes / --import-outcomes)

Folder layout:
    results/<study>/experiment.yaml        the resolved study config
    results/<study>/normalizer.json        the one normalizer of every run and the classifier
    results/<study>/fingerprint.json       sha256 of the data used, and the software / CPU of the first session
    results/<study>/annotations.zarr       (+ .accuracy.csv, plots) the shared classifier output
    results/<study>/runs/<label>/seed<k>/  (RunFolder) run.json (the run's identity), train/, eval/, result.json, done;
                                           with a checkpoint protocol (eval.checkpoints last_k / every) also
                                           selection.json, eval_selection/, eval_selected/ (eval/selection.py)
    results/<study>/table.md, table.csv    success per method with Wilson intervals, McNemar vs baseline
    results/<study>/plots/*.png (+ .csv)   success per method, success vs alpha, classifier accuracy,
                                           sigma_n histogram, action power spectra
Paths in the YAML are relative to the directory the command runs in.
"""
from harness.study.config import StudyConfig, load_study
from harness.study.runner import StudyResult, report_only, run_study

__all__ = ["StudyConfig", "StudyResult", "load_study", "report_only", "run_study"]
