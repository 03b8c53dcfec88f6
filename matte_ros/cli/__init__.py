"""Command-line tools of matte_ros (``matte-ros``)."""
