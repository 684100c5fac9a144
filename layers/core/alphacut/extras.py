"""The pictures that come with a photo (a background picture, a touch-up's strokes), checked before
any model runs with the error the compose would raise after it: a refusal after the model would be
a free model run, and a task's would fail the task instead of answering its submission.

Usage::

    refuse_bad_extras(options, limits)   # InvalidOption / CorruptImage / ... naming the field
"""

from __future__ import annotations

from alphacut import touchup
from alphacut.codec import decode_image
from alphacut.errors import AlphacutError
from alphacut.options import CutoutOptions
from alphacut.settings import ImageLimits


def refuse_bad_extras(options: CutoutOptions, limits: ImageLimits) -> None:
    """A background picture that does not decode within ``limits``, strokes that are no PNG of the
    touch-up's kind: refused, naming the field they came in."""
    if options.bg_image is not None:
        try:
            decode_image(options.bg_image, limits)
        except AlphacutError as error:
            error.field = "bg_image_url" if options.bg_image_url else "bg_image_file"
            raise
    if options.refine is not None:
        touchup.read_strokes(options.refine, 1, 1)
