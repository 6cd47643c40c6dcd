"""``app.py`` that first starts one job from inside the app process, as the app's tabs do.

Used by the crash tests: the job (a spec's YAML in ``RBFT_TEST_JOB_SPEC``) is a child of this process, so killing this process shows whether jobs survive the app.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import app  # noqa: E402  (the repository root must be importable first)


def main() -> int:
    import yaml

    from rbft_core.jobs.runner import start_job
    from rbft_core.specs import spec_from_dict

    args = app.parse_args(sys.argv[1:])
    if args.data_dir:
        os.environ["RBFT_DATA_DIR"] = args.data_dir
    job_id = start_job(args.db, spec_from_dict(yaml.safe_load(os.environ["RBFT_TEST_JOB_SPEC"])))
    print(f"started job {job_id}", flush=True)
    return app.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
