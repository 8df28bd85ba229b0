"""Good-region selection (Yang, Wu & Sun): a CNN rating where a blur kernel is best estimated.

    from jaxdeblur.models import region, load
    task = region.make_task(region.PRESETS["cpu"])          # labels (cached) + the one trainer
    scorer = load("region-cpu").fn                           # a RegionScorer
    choice = region.select_region(blurred, 128)              # best box (x, y, w, h) + score map
    jaxdeblur.deblur(blurred, 19, method="map", region="cnn")

Modules: config (RegionConfig, presets paper / cpu / tiny), labels (patch
labels from the MAP estimator, cached on disk), task (RegionTask), inference
(RegionScorer, select_region), figures (the score-map figure). The network is
`jaxdeblur.nets.region_cnn.RegionCNN`.
"""

from jaxdeblur.models.region.config import CPU, PAPER, PRESETS, TINY, RegionConfig
from jaxdeblur.models.region.inference import (RegionChoice, RegionScorer, cnn_window, make_inference,
                                               select_region, window_starts)
from jaxdeblur.models.region.labels import cached_labels, labels_of, make_labels
from jaxdeblur.models.region.task import RegionTask, build_model, make_task, roc_auc
from jaxdeblur.models.region.checks import check_metrics, check_windows

__all__ = ["CPU", "PAPER", "PRESETS", "TINY", "RegionChoice", "RegionConfig", "RegionScorer", "RegionTask",
           "build_model", "cached_labels", "check_metrics", "check_windows", "cnn_window", "labels_of",
           "make_inference", "make_labels", "make_task", "roc_auc", "select_region", "window_starts"]
