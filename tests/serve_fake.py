"""``python -m tests.serve_fake DB INDEX_DIR PORT WORKERS``: the real server (gunicorn) with the fake encoder.

For tests of serving itself (workers, signals) without loading the real model.
"""

import sys

from refmatch.config import load_settings
from refmatch.embed.fake import FakeEncoder
from refmatch.web.server import serve

if __name__ == "__main__":
    db, index_dir, port, workers = sys.argv[1:5]
    settings = load_settings({"db": db, "index_dir": index_dir})  # REFMATCH_* from the test (SMTP, ...)
    # no background indexer: it would load the real model, whose vectors these indexes do not hold
    serve(settings, FakeEncoder(), host="127.0.0.1", port=int(port), workers=int(workers), timeout=30, indexer=False)
