"""
ROS 2 bags in and out, without a ROS installation (``rosbags``, pure Python).

:class:`BagFrames` reads ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage`` messages
of one topic from a bag (MCAP or sqlite3: the folder with ``metadata.yaml``, or a
``.mcap`` / ``.db3`` file inside it) and yields BGR frames the way
:func:`matte_ros.measure.datasets.iter_frames` does, keeping each message's header for the
output.  :class:`BagOutput` writes mask / alpha / composite as ``sensor_msgs/Image``
messages with the input's header and receive time, so ``ros2 bag play`` replays them in
step with the camera.  The message definitions come from rosbags' Humble type store
(Image and CompressedImage are the same in Humble, Jazzy and Kilted).
"""

import os
from typing import Iterator
from typing import Optional
from typing import Tuple

from matte_ros import compressed
from matte_ros import image_encodings
import numpy as np

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
STORAGES = ('mcap', 'sqlite3')


class BagError(ValueError):
    """A bag that cannot be read or a topic it does not hold (says which and why)."""


def _typestore():
    from rosbags.typesys import get_typestore
    from rosbags.typesys import Stores
    return get_typestore(Stores.ROS2_HUMBLE)


def bag_folder(path: str) -> Optional[str]:
    """Return the bag folder ``path`` names (folder or a file in it), or None if not a bag."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if os.path.isfile(os.path.join(folder, 'metadata.yaml')):
        if os.path.isdir(path) or path.endswith(('.mcap', '.db3')):
            return folder
    return None


class BagFrames:
    """
    Iterate ``(stem, frame_bgr)`` over the image messages of ``topic`` in a bag.

    Stems are the message index padded to 6 digits.  After each item, :attr:`current`
    holds ``(receive_time_ns, header)`` of that message.  Malformed messages raise
    :class:`~matte_ros.image_encodings.EncodingError`.
    """

    def __init__(self, path: str, topic: str, max_pixels: Optional[int] = None):
        from rosbags.rosbag2 import Reader
        folder = bag_folder(path)
        if folder is None:
            raise BagError('%s is not a ROS 2 bag (no metadata.yaml beside it)' % path)
        self.folder = folder
        self.topic = topic
        self.max_pixels = max_pixels
        self.current: Optional[Tuple[int, object]] = None
        self._typestore = _typestore()
        self._reader = Reader(folder)
        self._reader.open()
        self._connections = [c for c in self._reader.connections if c.topic == topic]
        if not self._connections:
            images = sorted({c.topic for c in self._reader.connections
                             if c.msgtype in (IMAGE, COMPRESSED_IMAGE)})
            self.close()
            raise BagError('bag %s has no topic %s; image topics: %s'
                           % (folder, topic, ', '.join(images) or 'none'))
        kinds = {c.msgtype for c in self._connections}
        if not kinds <= {IMAGE, COMPRESSED_IMAGE}:
            self.close()
            raise BagError('topic %s holds %s, not sensor_msgs/Image or CompressedImage'
                           % (topic, ', '.join(sorted(kinds))))

    def __len__(self) -> int:
        return sum(c.msgcount for c in self._connections)

    def __iter__(self) -> Iterator[Tuple[str, np.ndarray]]:
        for index, (connection, timestamp, raw) in enumerate(
                self._reader.messages(connections=self._connections)):
            msg = self._typestore.deserialize_cdr(raw, connection.msgtype)
            if connection.msgtype == COMPRESSED_IMAGE:
                frame = compressed.decode(msg.data, self.max_pixels)
            else:
                frame = image_encodings.image_to_bgr8(
                    msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data,
                    self.max_pixels)
            self.current = (timestamp, msg.header)
            yield '%06d' % index, frame

    def close(self) -> None:
        """Close the bag."""
        self._reader.close()


def stamp_seconds(header) -> float:
    """Return a header's stamp in seconds."""
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class BagOutput:
    """Write mask, alpha and composite of each frame to a new bag under ``prefix``."""

    OUTPUTS = (('mask', 'mono8'), ('alpha', 'mono8'), ('composite', 'bgr8'))

    def __init__(self, path: str, prefix: str = '/matte', storage: str = 'mcap'):
        from rosbags.rosbag2 import StoragePlugin
        from rosbags.rosbag2 import Writer
        if storage not in STORAGES:
            raise BagError('storage must be one of %s, got %r' % (', '.join(STORAGES), storage))
        if os.path.exists(path):
            raise BagError('output bag %s exists already (rosbag2 never overwrites)' % path)
        self._typestore = _typestore()
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(path, version=8, storage_plugin=plugin)
        self._writer.open()
        self.topics = {name: prefix.rstrip('/') + '/' + name for name, _ in self.OUTPUTS}
        self._connections = {name: self._writer.add_connection(topic, IMAGE,
                                                               typestore=self._typestore)
                             for name, topic in self.topics.items()}
        self.written = 0

    def write(self, timestamp: int, header, result) -> None:
        """Write the outputs of one frame with the input ``header`` at ``timestamp`` (ns)."""
        image_type = self._typestore.types[IMAGE]
        arrays = {'mask': result.mask, 'alpha': result.alpha, 'composite': result.composite}
        for name, encoding in self.OUTPUTS:
            array = arrays[name]
            if array is None:
                continue
            if array.ndim == 3 and array.shape[2] == 4:
                encoding = 'bgra8'  # composite.mode transparent
            step, data = image_encodings.encode(array, encoding)
            msg = image_type(header=header, height=int(array.shape[0]),
                             width=int(array.shape[1]), encoding=encoding, is_bigendian=0,
                             step=step, data=np.frombuffer(data, np.uint8))
            self._writer.write(self._connections[name], timestamp,
                               self._typestore.serialize_cdr(msg, IMAGE))
        self.written += 1

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml)."""
        self._writer.close()
