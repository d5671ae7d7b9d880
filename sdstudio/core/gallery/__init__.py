"""The gallery: `store` (the folder + SQLite index), `query` (search text), `thumbnails`,
`saving` (save or rescue, shared by the window and the CLI)."""

from sdstudio.core.gallery.store import (
    FAVOURITES_FILE,
    Gallery,
    GalleryImage,
    IndexNotUpdated,
    SyncReport,
    file_name_for,
    index_path_for,
)

__all__ = ["FAVOURITES_FILE", "Gallery", "GalleryImage", "IndexNotUpdated", "SyncReport",
           "file_name_for", "index_path_for"]
