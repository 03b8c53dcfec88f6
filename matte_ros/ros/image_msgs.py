"""
Convert ``sensor_msgs/Image`` messages to NumPy arrays and back.

The work is done by :mod:`matte_ros.image_encodings`; this module only maps message fields.
Reading is zero-copy where the encoding allows (the array views ``msg.data``), and
writing hands rclpy an ``array.array('B')``, which it stores with one memcpy (a NumPy
array assigned to ``msg.data`` is copied element by element, ~100 ms per VGA frame).
"""

from typing import Optional

from matte_ros import image_encodings
import numpy as np
from sensor_msgs.msg import Image


def decode_image_msg(msg: Image, max_pixels: Optional[int] = None) -> np.ndarray:
    """Return the message's pixels in their encoding's native layout (see ``decode``)."""
    return image_encodings.decode(msg.encoding, msg.height, msg.width, msg.step,
                                  msg.is_bigendian, msg.data, max_pixels)


def image_msg_to_bgr8(msg: Image, max_pixels: Optional[int] = None) -> np.ndarray:
    """Return the message as an H×W×3 uint8 BGR image; raise ``EncodingError`` if malformed."""
    return image_encodings.to_bgr8(decode_image_msg(msg, max_pixels), msg.encoding)


def make_image_msg(header, image: np.ndarray, encoding: str) -> Image:
    """
    Return an Image message holding ``image`` (native layout of ``encoding``).

    ``header`` is stored as given (same object), so outputs carry the input's stamp and
    frame_id.  Raises ``EncodingError`` when the array does not fit the encoding.
    """
    step, data = image_encodings.encode(image, encoding)
    msg = Image()
    msg.header = header
    msg.height = int(image.shape[0])
    msg.width = int(image.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = step
    msg.data = data
    return msg
