"""
Cut long strings before they reach a log line or a service reply (ROS-free).

Parameter values, file paths and decoder messages come from clients; one of a megabyte
would otherwise be echoed whole into every rejection.  :func:`cut` keeps the head and
says how much was left out; :func:`brief` does the same for ``repr(value)``.
"""

#: Characters of one value kept in a log line or reply.
LIMIT = 200
#: Characters of a whole message (its quoted values already cut to :data:`LIMIT` each):
#: room for two file paths and a model name, never a megabyte.
MESSAGE_LIMIT = 1000


def cut(text, limit: int = LIMIT) -> str:
    """Return ``text`` (made a str) cut to about ``limit`` characters, saying how much went."""
    text = str(text)
    if len(text) <= limit:
        return text
    return '%s… (%d characters in all)' % (text[:limit], len(text))


def message(text) -> str:
    """Return a whole log line or reply cut to :data:`MESSAGE_LIMIT` characters."""
    return cut(text, MESSAGE_LIMIT)


def brief(value, limit: int = LIMIT) -> str:
    """Return ``repr(value)`` cut like :func:`cut` (for values quoted in messages)."""
    return cut(repr(value), limit)
