"""Lightning callbacks that turn produced images into numbers and pictures."""

from callbacks.image_grid import ImageGrid, class_grid, pair_grid
from callbacks.image_metrics import ImageMetrics
from callbacks.outputs import produced_images

__all__ = ["ImageGrid", "ImageMetrics", "class_grid", "pair_grid", "produced_images"]
