"""The operations: one module per kind of edit, found by the registry (see ``base.py``).

    from promptpaint import operations
    operations.names()                  # ['replace', 'remove', 'outpaint', ...]
    operations.get("outpaint").options  # OutpaintEdit
"""

from promptpaint.operations.base import (Operation, all_operations, get, names, option_fields,
                                         parse_edit)

__all__ = ["Operation", "all_operations", "get", "names", "option_fields", "parse_edit"]
