"""Lightning callbacks that turn produced images into numbers and pictures."""

from callbacks.depth_grid import DepthGrid
from callbacks.image_grid import ImageGrid
from callbacks.image_metrics import ImageMetrics
from callbacks.outputs import ProducedImages, produced_images
from callbacks.save_images import SaveImages

__all__ = [
    "DepthGrid",
    "ImageGrid",
    "ImageMetrics",
    "ProducedImages",
    "SaveImages",
    "produced_images",
]
