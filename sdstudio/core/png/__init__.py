"""PNG metadata: the A1111 text format (`a1111`), our reproducibility record (`record`), other
tools' formats (`readers`), and PNG input/output (`io`). The names most callers need are
re-exported here."""

from sdstudio.core.png.a1111 import format_parameters, parse_parameters
from sdstudio.core.png.io import (
    display_name,
    parameters_from_info,
    read_info,
    read_png,
    request_from_png,
    write_png,
)
from sdstudio.core.png.parameters import MetadataError, Parameters

__all__ = [
    "MetadataError", "Parameters", "display_name", "format_parameters", "parameters_from_info",
    "parse_parameters", "read_info", "read_png", "request_from_png", "write_png",
]
