"""
Dataset readers (matte_ros.measure.datasets) and ``matte-ros eval`` over them.

Most tests write a tiny DAVIS- or CDnet-layout tree into ``tmp_path`` themselves (frames
with a white square whose ground truth is known), so the real reading code runs on
small data; the tests marked as such read the real data in ``../shared`` and skip
when it is absent.
"""

import argparse
import json
import math
import os
import types

import cv2
from matte_ros.cli import eval_cmd
from matte_ros.measure import datasets
from matte_ros.measure import scoring
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, '..', 'shared')
DAVIS = os.path.join(SHARED, 'data', 'davis2016')
CDNET = os.path.join(SHARED, 'data', 'cdnet2014', 'baseline')

SIZE = (48, 64)        # H, W of the synthetic frames


def square_frame(index, size=SIZE):
    """Return (BGR frame, 0/255 mask) with a 12 px white square moving 3 px per frame."""
    mask = np.zeros(size, np.uint8)
    left = 4 + 3 * index
    mask[10:22, left:left + 12] = 255
    return cv2.merge([mask, mask, mask]), mask


def write_davis(root, sequences):
    """Write a DAVIS-layout tree: ``sequences`` maps a name to its number of frames."""
    for seq, frames in sequences.items():
        images = os.path.join(root, 'JPEGImages', '480p', seq)
        notes = os.path.join(root, 'Annotations', '480p', seq)
        os.makedirs(images)
        os.makedirs(notes)
        for i in range(frames):
            frame, mask = square_frame(i)
            cv2.imwrite(os.path.join(images, '%05d.jpg' % i), frame,
                        [cv2.IMWRITE_JPEG_QUALITY, 100])
            cv2.imwrite(os.path.join(notes, '%05d.png' % i), mask)
    return str(root)


def write_cdnet(seqdir, frames, window=None, roi=None, missing_gt=()):
    """Write a CDnet-layout sequence; ground truth 255 on the square, 50 beside it."""
    os.makedirs(os.path.join(seqdir, 'input'))
    os.makedirs(os.path.join(seqdir, 'groundtruth'))
    for number in range(1, frames + 1):
        frame, mask = square_frame(number)
        cv2.imwrite(os.path.join(seqdir, 'input', 'in%06d.jpg' % number), frame,
                    [cv2.IMWRITE_JPEG_QUALITY, 100])
        gt = mask.copy()
        gt[30:34, :] = 50                                     # a "shadow" band
        if number not in missing_gt:
            cv2.imwrite(os.path.join(seqdir, 'groundtruth', 'gt%06d.png' % number), gt)
    if window is not None:
        with open(os.path.join(seqdir, 'temporalROI.txt'), 'w') as f:
            f.write('%d %d\n' % window)
    if roi is not None:
        cv2.imwrite(os.path.join(seqdir, 'ROI.bmp'), roi)
    return str(seqdir)


# --- DAVIS -----------------------------------------------------------------------------------

def test_davis_reader_on_a_tiny_tree(tmp_path):
    root = write_davis(tmp_path, {'walk': 3, 'jump': 2})
    assert datasets.davis_sequences(root) == ['jump', 'walk']
    assert datasets.davis_frame_count(root, 'walk') == 3
    items = list(datasets.iter_davis(root, 'walk'))
    assert [stem for stem, _, _ in items] == ['00000', '00001', '00002']
    for index, (_, frame, gt) in enumerate(items):
        _, mask = square_frame(index)
        assert frame.shape == SIZE + (3,) and frame.dtype == np.uint8
        assert gt.dtype == bool and np.array_equal(gt, mask > 0)


def test_davis_frame_without_annotation_has_none(tmp_path):
    root = write_davis(tmp_path, {'walk': 3})
    os.remove(os.path.join(root, 'Annotations', '480p', 'walk', '00001.png'))
    gts = [gt for _, _, gt in datasets.iter_davis(root, 'walk')]
    assert gts[0] is not None and gts[1] is None and gts[2] is not None


def test_davis_missing_root_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match='JPEGImages'):
        datasets.davis_sequences(str(tmp_path))


# --- CDnet -----------------------------------------------------------------------------------

def test_cdnet_reader_honours_temporal_roi(tmp_path):
    roi = np.full(SIZE, 255, np.uint8)
    roi[:, :8] = 0
    seqdir = write_cdnet(tmp_path / 'walk', 6, window=(3, 5), roi=roi, missing_gt=(4,))
    assert datasets.cdnet_temporal_roi(seqdir) == (3, 5)
    assert np.array_equal(datasets.cdnet_roi(seqdir), roi > 0)
    assert datasets.cdnet_frame_count(seqdir) == 6
    items = list(datasets.iter_cdnet(seqdir))
    assert [stem for stem, _, _, _ in items] == ['in%06d' % n for n in range(1, 7)]
    # Frames 3..5 are in the temporal ROI, but frame 4 has no ground truth.
    assert [scored for _, _, _, scored in items] == [False, False, True, False, True, False]
    assert items[3][2] is None
    gt = items[2][2]
    assert gt.dtype == np.uint8 and gt.shape == SIZE
    assert set(np.unique(gt)) == {0, 50, 255}
    assert [s for s, _, _, _ in datasets.iter_cdnet(seqdir, first=2, last=3)] == \
        ['in000002', 'in000003']


def test_cdnet_without_roi_files_scores_everything(tmp_path):
    seqdir = write_cdnet(tmp_path / 'plain', 3)
    assert datasets.cdnet_temporal_roi(seqdir) is None
    assert datasets.cdnet_roi(seqdir) is None
    assert all(scored for _, _, _, scored in datasets.iter_cdnet(seqdir))


def test_cdnet_sequences_from_sequence_category_or_dataset(tmp_path):
    a = write_cdnet(tmp_path / 'baseline' / 'a', 1)
    b = write_cdnet(tmp_path / 'baseline' / 'b', 1)
    c = write_cdnet(tmp_path / 'shadow' / 'c', 1)
    assert datasets.cdnet_sequences(a) == [a]
    assert datasets.cdnet_sequences(str(tmp_path / 'baseline')) == [a, b]
    assert datasets.cdnet_sequences(str(tmp_path)) == [a, b, c]
    os.makedirs(str(tmp_path / 'empty'))
    with pytest.raises(FileNotFoundError, match='no CDnet sequence'):
        datasets.cdnet_sequences(str(tmp_path / 'empty'))


def test_temporal_roi_file_must_hold_two_numbers(tmp_path):
    seqdir = write_cdnet(tmp_path / 'bad', 1)
    with open(os.path.join(seqdir, 'temporalROI.txt'), 'w') as f:
        f.write('300\n')
    with pytest.raises(ValueError, match='two frame numbers'):
        datasets.cdnet_temporal_roi(seqdir)


# --- plain inputs ----------------------------------------------------------------------------

def test_iter_frames_directory_in_natural_order(tmp_path):
    for name in ('f10.png', 'f2.jpg', 'f1.bmp', 'notes.txt'):
        path = str(tmp_path / name)
        if name.endswith('.txt'):
            with open(path, 'w') as f:
                f.write('not an image')
        else:
            cv2.imwrite(path, np.full((8, 10, 3), int(name[1:].split('.')[0]), np.uint8))
    assert datasets.count(str(tmp_path)) == 3
    items = list(datasets.iter_frames(str(tmp_path)))
    assert [stem for stem, _ in items] == ['f1', 'f2', 'f10']
    assert [int(frame[0, 0, 0]) for _, frame in items] == [1, 2, 10]


def test_iter_frames_video_file(tmp_path):
    path = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 10, (32, 24))
    if not writer.isOpened():
        pytest.skip('this OpenCV build cannot write MJPG video')
    for i in range(5):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    assert datasets.count(path) == 5
    items = list(datasets.iter_frames(path))
    assert [stem for stem, _ in items] == ['000000', '000001', '000002', '000003', '000004']
    assert items[0][1].shape == (24, 32, 3)
    means = [frame.mean() for _, frame in items]
    assert means == sorted(means) and means[-1] > 100


def test_camera_names_and_missing_input():
    assert datasets._camera_index(0) == 0
    assert datasets._camera_index('2') == 2
    assert datasets._camera_index('/dev/video3') == 3
    assert datasets._camera_index('clip.mp4') is None
    assert datasets.count('/dev/video7') is None
    with pytest.raises(FileNotFoundError):
        next(datasets.iter_frames('/nonexistent/clip.mp4'))


# --- the real data in ../shared --------------------------------------------------------------

def test_real_data_counts():
    """Read the real DAVIS 2016 and CDnet 2014 copies in ../shared (skip when absent)."""
    if not (os.path.isdir(DAVIS) and os.path.isdir(CDNET)):
        pytest.skip('no ../shared/data (DAVIS 2016 / CDnet 2014 copies) beside the repo')
    assert datasets.davis_sequences(DAVIS) == ['dance-twirl', 'kite-surf', 'parkour']
    stem, frame, gt = next(datasets.iter_davis(DAVIS, 'parkour'))
    assert stem == '00000' and frame.shape == (480, 854, 3) and gt.shape == (480, 854)
    assert 0 < gt.mean() < 0.5
    seqdirs = datasets.cdnet_sequences(CDNET)
    names = [os.path.basename(d) for d in seqdirs]
    assert names == ['highway', 'pedestrians']
    counts = {n: datasets.cdnet_frame_count(d) for n, d in zip(names, seqdirs)}
    assert counts == {'highway': 1700, 'pedestrians': 1099}
    assert datasets.cdnet_temporal_roi(seqdirs[0]) == (470, 1700)
    assert datasets.cdnet_temporal_roi(seqdirs[1]) == (300, 1099)
    items = list(datasets.iter_cdnet(seqdirs[1], first=299, last=301))
    assert [(s, scored) for s, _, _, scored in items] == \
        [('in000299', False), ('in000300', True), ('in000301', True)]
    assert set(np.unique(items[1][2])) <= {0, 50, 85, 170, 255}


# --- matte-ros eval --------------------------------------------------------------------------

class OraclePipeline:
    """Stand-in for matte_ros.pipeline.Pipeline: the mask is the frame's white pixels."""

    instances = []

    def __init__(self, values, backend='cpu'):
        self.values = values
        self.backend = backend
        self.calls = []
        self.closed = False
        OraclePipeline.instances.append(self)

    def process(self, frame, stamp=None, frame_id=None):
        """Return a Result-like object whose mask is the bright part of the frame."""
        self.calls.append(('frame', frame_id))
        mask = np.where(frame[:, :, 1] > 127, 255, 0).astype(np.uint8)
        return types.SimpleNamespace(mask=mask, alpha=mask, composite=None, timings={})

    def reset(self, reason='requested'):
        """Record the reset."""
        self.calls.append(('reset', reason))

    def close(self):
        """Record the close."""
        self.closed = True


def parse(argv):
    """Parse ``matte-ros eval`` arguments through the subcommand's own parser."""
    parser = argparse.ArgumentParser(prog='matte-ros')
    eval_cmd.add_parser(parser.add_subparsers())
    return parser.parse_args(['eval'] + argv)


def test_eval_davis_with_an_oracle(tmp_path, capsys):
    OraclePipeline.instances = []
    root = write_davis(tmp_path / 'davis', {'walk': 5, 'jump': 4})
    out = str(tmp_path / 'r.json')
    args = parse(['--format', 'davis', '--data', root, '--segmenter', 'framediff',
                  '--param', 'framediff.threshold=9', '--json', out])
    assert eval_cmd.run(args, OraclePipeline) == 0
    pipe, = OraclePipeline.instances
    assert pipe.values['framediff.threshold'] == 9
    assert pipe.values['composite.mode'] == 'none' and pipe.values['segmenter'] == 'framediff'
    # Each sequence starts with a reset, then its frames; sequences in sorted order.
    kinds = [kind for kind, _ in pipe.calls]
    assert kinds == ['reset'] + ['frame'] * 4 + ['reset'] + ['frame'] * 5
    assert pipe.closed
    with open(out) as f:
        results = json.load(f)
    rows = {r['sequence']: r for r in results['sequences']}
    assert rows['walk']['processed'] == 5 and rows['walk']['frames'] == 3   # ends skipped
    for row in rows.values():
        assert row['J'] == 1.0 and row['F'] == 1.0                   # frames match their GT
    assert results['mean']['J'] == 1.0 and results['mean']['processed'] == 9
    table = capsys.readouterr().out
    assert 'walk' in table and 'mean' in table and 'J&F' in table


def test_eval_davis_max_frames_and_sequence_choice(tmp_path, capsys):
    OraclePipeline.instances = []
    root = write_davis(tmp_path, {'walk': 6, 'jump': 4})
    out = str(tmp_path / 'r.json')
    args = parse(['--format', 'davis', '--data', root, '--segmenter', 'bgsub',
                  '--sequences', 'walk', '--max-frames', '4', '--json', out])
    assert eval_cmd.run(args, OraclePipeline) == 0
    with open(out) as f:
        results = json.load(f)
    assert [r['sequence'] for r in results['sequences']] == ['walk']
    assert results['sequences'][0]['processed'] == 4


def test_eval_cdnet_warmup_and_temporal_roi(tmp_path):
    OraclePipeline.instances = []
    write_cdnet(tmp_path / 'cat' / 'walk', 10, window=(5, 8))
    results = eval_cmd.evaluate('cdnet', str(tmp_path / 'cat'),
                                eval_cmd.config_values('bgsub'), warmup=2,
                                pipeline_factory=OraclePipeline)
    row, = results['sequences']
    # Warm-up frames 3..4, scored frames 5..8; frames 1, 2, 9 and 10 are never read.
    assert row['processed'] == 6 and row['frames'] == 4
    # The oracle finds the square (255) and nothing in the shadow band (50).
    square_px = 12 * 12
    assert (row['TP'], row['FN'], row['FP']) == (4 * square_px, 0, 0)
    assert row['TN'] == 4 * (SIZE[0] * SIZE[1] - square_px)
    assert row['f_measure'] == 1.0 and row['pwc'] == 0.0
    limited = eval_cmd.evaluate('cdnet', str(tmp_path / 'cat' / 'walk'),
                                eval_cmd.config_values('bgsub'), max_frames=2,
                                pipeline_factory=OraclePipeline)
    row, = limited['sequences']
    assert row['processed'] == 6 and row['frames'] == 2        # all 4 warm-up frames run


class FlickerPipeline(OraclePipeline):
    """The oracle plus blocks of stray foreground that switch on every other frame."""

    #: (rows, columns) of the stray blocks.
    blocks = [(slice(40, 44), slice(0, 4)), (slice(40, 42), slice(50, 52))]

    def process(self, frame, stamp=None, frame_id=None):
        """Return the oracle's mask with the blocks on at odd frame counts."""
        result = super().process(frame, stamp, frame_id)
        if len([c for c in self.calls if c[0] == 'frame']) % 2:
            for rows, columns in self.blocks:
                result.mask[rows, columns] = 255
        return result


def test_eval_temporal_scores_davis(tmp_path, capsys):
    root = write_davis(tmp_path, {'walk': 6})
    steady = eval_cmd.evaluate('davis', root, eval_cmd.config_values('bgsub'),
                               pipeline_factory=OraclePipeline)
    row = steady['sequences'][0]
    # Alpha and mask follow the moving square exactly: no temporal error.
    assert row['pairs'] == 3 and row['dtSSD'] == 0.0 and row['flicker'] == 0.0
    flicker = eval_cmd.evaluate('davis', root, eval_cmd.config_values('bgsub'),
                                pipeline_factory=FlickerPipeline)
    row = flicker['sequences'][0]
    # 16 + 4 of 48 x 64 px toggle in each of the pairs (1,2), (2,3), (3,4).
    pixels = SIZE[0] * SIZE[1]
    assert row['flicker'] == pytest.approx(100.0 * 20 / pixels)
    assert row['dtSSD'] == pytest.approx(100.0 * math.sqrt(20.0 / pixels))
    assert flicker['mean']['flicker'] == pytest.approx(row['flicker'])
    assert row['J'] < 1.0
    table = eval_cmd.format_table(flicker)
    assert 'dtSSD' in table and 'flicker' in table


def test_eval_temporal_scores_cdnet_use_scored_pixels_only(tmp_path):
    roi = np.full(SIZE, 255, np.uint8)
    roi[:, :8] = 0                          # the first stray block lies outside the ROI
    write_cdnet(tmp_path / 'walk', 10, window=(5, 8), roi=roi)
    results = eval_cmd.evaluate('cdnet', str(tmp_path / 'walk'),
                                eval_cmd.config_values('bgsub'),
                                pipeline_factory=FlickerPipeline)
    row, = results['sequences']
    # Pairs (5,6), (6,7), (7,8); in each the 4 px block inside the ROI toggles, out of
    # the 48 x 56 scored pixels (the warm-up frames form no pair).
    scored = SIZE[0] * (SIZE[1] - 8)
    assert row['pairs'] == 3
    assert row['flicker'] == pytest.approx(100.0 * 4 / scored)
    assert row['dtSSD'] == pytest.approx(100.0 * math.sqrt(4.0 / scored))


def test_eval_errors_exit_2(tmp_path, capsys):
    root = write_davis(tmp_path, {'walk': 3})
    bad_param = parse(['--format', 'davis', '--data', root, '--segmenter', 'bgsub',
                       '--param', 'threshold=2'])
    assert eval_cmd.run(bad_param, OraclePipeline) == 2
    bad_seq = parse(['--format', 'davis', '--data', root, '--segmenter', 'bgsub',
                     '--sequences', 'nope'])
    assert eval_cmd.run(bad_seq, OraclePipeline) == 2
    no_data = parse(['--format', 'cdnet', '--data', str(tmp_path / 'none'),
                     '--segmenter', 'bgsub'])
    assert eval_cmd.run(no_data, OraclePipeline) == 2
    err = capsys.readouterr().err
    assert 'threshold' in err and 'nope' in err and 'no CDnet data' in err


def _real_pipeline():
    try:
        from matte_ros.pipeline import Pipeline
    except ImportError as exc:
        pytest.skip('matte_ros.pipeline cannot be imported yet: %s' % exc)
    return Pipeline


def test_eval_end_to_end_on_real_frames(tmp_path):
    """Run the real Pipeline (bgsub, framediff) on a few frames of ../shared data."""
    pipeline_class = _real_pipeline()
    if not (os.path.isdir(DAVIS) and os.path.isdir(CDNET)):
        pytest.skip('no ../shared/data (DAVIS 2016 / CDnet 2014 copies) beside the repo')
    out = str(tmp_path / 'cdnet.json')
    args = parse(['--format', 'cdnet', '--data', CDNET, '--sequences', 'pedestrians',
                  '--segmenter', 'bgsub', '--max-frames', '10', '--warmup', '60',
                  '--json', out])
    assert eval_cmd.run(args) == 0
    with open(out) as f:
        row, = json.load(f)['sequences']
    assert row['processed'] == 70 and row['frames'] == 10
    # MOG2 after 60 frames finds the walking pedestrian: F-measure 0.75 when measured.
    assert row['f_measure'] > 0.5
    assert row['fps'] > 0

    results = eval_cmd.evaluate('davis', DAVIS, eval_cmd.config_values('framediff'),
                                sequences=['kite-surf'], max_frames=6)
    row, = results['sequences']
    assert row['processed'] == 6 and row['frames'] == 4
    # The same frames scored directly give the same numbers.
    pipeline = pipeline_class(eval_cmd.config_values('framediff'), backend='cpu')
    score = scoring.DavisScore()
    for index, (_, frame, gt) in enumerate(datasets.iter_davis(DAVIS, 'kite-surf')):
        if index == 6:
            break
        score.add(pipeline.process(frame).mask > 127, gt)
    pipeline.close()
    direct = score.result()
    assert not math.isnan(row['J'])
    assert row['J'] == pytest.approx(direct['J']) and row['F'] == pytest.approx(direct['F'])
