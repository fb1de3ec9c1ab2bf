"""Child process of :func:`labkit.course.execute`: run one notebook with papermill, then print
the kernel's peak memory as ``PEAK_RSS_MB=<n>``.

Run as a script (``python .../_papermill_child.py NOTEBOOK EXECUTED PARAMS_JSON``), not as part of
the package: importing ``labkit`` would import TensorFlow here too, which costs seconds per notebook
and is only needed inside the kernel.
"""
import json
import os
import resource
import sys
from pathlib import Path


def main(notebook: str, executed: str, params_json: str) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")   # the kernel inherits it: no C++ start-up chatter
    import papermill

    try:
        papermill.execute_notebook(notebook, executed, parameters=json.loads(params_json),
                                   progress_bar=False, cwd=str(Path(notebook).parent), kernel_name="python3",
                                   execution_timeout=3600)
        status = 0
    except Exception as err:  # noqa: BLE001 - report any notebook failure, keep going
        message = getattr(err, "ename", type(err).__name__) + ": " + str(getattr(err, "evalue", err))
        print(message.replace("\n", " ")[:500], file=sys.stderr)
        status = 1
    kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"PEAK_RSS_MB={kb / (1024 * 1024 if sys.platform == 'darwin' else 1024):.0f}")
    return status


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
