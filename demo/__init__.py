"""The project's own demo author, Tova Brannock (fictional): her writing, served and exported.

- :mod:`demo.authoring` renders ``demo/content`` into the committed ``site/`` and ``exports/``.
- :mod:`demo.build` makes a servable copy for one base URL, the export ZIPs and a clonable repo.
- :mod:`demo.serve` serves a folder (and its git repositories) on 127.0.0.1.
"""
