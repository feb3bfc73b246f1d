"""The OpenFlow programmer: desired flows per switch (from ``flows``), diffed against what the
switch has, sent as the difference followed by a barrier."""
