"""The trtbuild artifact registry: content-addressed store, SQL catalog, transfer and resolution.

Usable on its own by deploy jobs; it never imports ``trtbuild``.
"""

__all__ = ["canonical"]
