"""Adapters: the only code that speaks HTTP (httpx) to the outside systems."""

import importlib.util
import sys

if importlib.util.find_spec("sniffio") is None:
    # httpcore asks `import sniffio` several times per request; when sniffio is not
    # installed each failed import searches sys.path again (~0.1 ms). Remember the miss.
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]
