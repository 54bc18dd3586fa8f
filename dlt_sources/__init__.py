"""dlt sources, one package per file-based source system; they import only dlt and `_common`."""
