"""A TFLite model as a C source array for TensorFlow Lite Micro (as micro_speech's model.cc).

``model_data.h`` declares ``g_model_data`` (aligned, as TFLM wants the flatbuffer) and
``g_model_data_len``; ``model_data.cc`` defines them, the bytes as ``0x..`` literals, 12 a line.
"""

from __future__ import annotations

import re
from pathlib import Path

BYTES_PER_LINE = 12
ALIGNMENT = 16

_LITERAL = re.compile(r"0x([0-9a-f]{2})")


def c_source(
    flat: bytes,
    header_name: str = "model_data.h",
    variable: str = "g_model_data",
    source: str = "model_int8.tflite",
) -> tuple[str, str]:
    """(``.cc`` text, ``.h`` text) holding ``flat``."""
    guard = re.sub(r"[^A-Z0-9]", "_", header_name.upper()) + "_"
    header = (
        f"// {source} as a C array for TensorFlow Lite Micro (written by the freeze stage).\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        f"extern const unsigned char {variable}[];\n"
        f"extern const int {variable}_len;\n\n"
        f"#endif  // {guard}\n"
    )
    lines = []
    for start in range(0, len(flat), BYTES_PER_LINE):
        chunk = flat[start : start + BYTES_PER_LINE]
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    body = (
        f"// {source} as a C array for TensorFlow Lite Micro (written by the freeze stage).\n"
        f'#include "{header_name}"\n\n'
        f"alignas({ALIGNMENT}) const unsigned char {variable}[] = {{\n"
        + "\n".join(lines)
        + f"\n}};\nconst int {variable}_len = {len(flat)};\n"
    )
    return body, header


def write_c_array(
    flat: bytes, folder: Path, stem: str = "model_data", source: str = "model_int8.tflite"
) -> tuple[Path, Path]:
    """Write ``<stem>.cc`` and ``<stem>.h`` into ``folder``; return their paths."""
    body, header = c_source(flat, f"{stem}.h", source=source)
    cc, h = Path(folder) / f"{stem}.cc", Path(folder) / f"{stem}.h"
    cc.write_text(body, encoding="utf-8")
    h.write_text(header, encoding="utf-8")
    return cc, h


def read_c_array(text: str) -> bytes:
    """The bytes of a ``.cc`` written by :func:`c_source` (for checks)."""
    array = text[text.index("{") + 1 : text.rindex("}")]
    return bytes(int(m, 16) for m in _LITERAL.findall(array))
