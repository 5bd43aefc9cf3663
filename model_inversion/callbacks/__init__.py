"""Lightning callbacks that turn produced images into numbers and pictures."""

from model_inversion.callbacks.depth_grid import DepthGrid
from model_inversion.callbacks.image_grid import ImageGrid
from model_inversion.callbacks.image_metrics import ImageMetrics
from model_inversion.callbacks.outputs import ProducedImages, produced_images
from model_inversion.callbacks.save_images import SaveImages
from model_inversion.callbacks.snapshots import Snapshots

__all__ = [
    "DepthGrid",
    "ImageGrid",
    "ImageMetrics",
    "ProducedImages",
    "SaveImages",
    "Snapshots",
    "produced_images",
]
