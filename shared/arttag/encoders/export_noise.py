"""The export's expected warnings, silenced where they arise and nowhere else.

``optimum``'s ``main_export`` traces the model with torch's TorchScript ONNX exporter, and
every run of it warns about things arttag has already decided or checked, so a person
exporting once sees them as errors that are not there:

- ``DeprecationWarning`` from ``optimum.exporters.onnx`` and ``torch.onnx``: the TorchScript
  exporter is the legacy one. optimum chooses it (it passes ``dynamo=False``), and the
  ``--opset`` range is that exporter's (arttag_cli.commands.model).
- ``torch.jit.TracerWarning``: tracing turns Python conditions on tensors into constants. The
  traced graph is checked instead: tests/test_encoder_onnx.py compares the export's
  embeddings with sentence-transformers' own.
- transformers' "`torch_dtype` is deprecated" (optimum reads the old attribute) and optimum's
  "Weight deduplication check ... requires accelerate" (MPNet's feature-extraction graph
  ties no weights, so there is nothing to deduplicate): log records, filtered on their
  own loggers by their text.

- onnxruntime's graph optimizer and quantizer report each step at INFO on loggers of their own
  ("Fused Gelu: 12", "Removed 132 nodes", "Performing symbolic shape inference..."): progress
  for people who work on the optimizer, not for someone exporting once, whose own progress
  bar names the step. Below WARNING they are dropped during the export
  (:func:`optimizer_steps_quiet`).

Anything else, including every error, still reaches the person exporting.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# the loggers onnxruntime's transformers optimizer and its quantization tools report steps on
OPTIMIZER_STEP_LOGGERS = ("fusion_base", "fusion_utils", "onnx_model", "onnx_model_bert",
                          "onnxruntime.quantization.shape_inference")

# (logger, start of the message) of the expected log records
EXPECTED_RECORDS = (
    ("transformers.configuration_utils", "`torch_dtype` is deprecated"),
    ("optimum.exporters.onnx.base", "Weight deduplication check in the ONNX export requires accelerate"),
)


class _DropExpected(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno < logging.ERROR and record.getMessage().startswith(self.start))


@contextmanager
def expected_export_noise_silenced() -> Iterator[None]:
    """Around ``main_export`` only: the warnings and log records listed above are dropped."""
    from torch.jit import TracerWarning

    filters = [(logging.getLogger(name), _DropExpected(start)) for name, start in EXPECTED_RECORDS]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"optimum\.exporters\.onnx")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", category=TracerWarning)
        for logger, drop in filters:
            logger.addFilter(drop)
        try:
            yield
        finally:
            for logger, drop in filters:
                logger.removeFilter(drop)


@contextmanager
def optimizer_steps_quiet() -> Iterator[None]:
    """Around the fp32 optimisation and the int8 quantization: the optimizer's step reports
    (INFO) are dropped, its warnings and errors are not."""
    loggers = [logging.getLogger(name) for name in OPTIMIZER_STEP_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
