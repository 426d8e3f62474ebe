"""Named SQL statements, one module per area. Every statement takes parameters; none is built from values."""
