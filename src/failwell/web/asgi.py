"""The app for an ASGI server run from outside failwell, one app per worker process:

    FAILWELL_DB=postgresql+psycopg://... uvicorn failwell.web.asgi:app --workers 4
    FAILWELL_DB=... gunicorn -k uvicorn.workers.UvicornWorker -w 4 failwell.web.asgi:app

``failwell serve --workers N`` does the first for you. ``FAILWELL_PUBLIC_DOCS=1`` opens the
API schema and its viewers to everyone (``failwell serve --public-docs``).
"""

import os

from failwell.web.app import create_app

app = create_app(os.environ.get("FAILWELL_DB") or None,
                 public_docs=os.environ.get("FAILWELL_PUBLIC_DOCS") == "1")
