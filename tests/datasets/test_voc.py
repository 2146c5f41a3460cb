"""Pascal VOC 2012: the dataset, the SBD converter and the miniature, checked against
computations made here (SciPy's reading of the .mat files, set arithmetic on the lists read
here, the devkit's colours copied by hand)."""
import os
import shutil

import numpy as np
import pytest
from paddleseg.transforms import Normalize
from PIL import Image
from scipy.io import loadmat, savemat

import paddleseg_ddr  # noqa: F401  (registers the datasets)
from paddleseg_ddr.datasets import dataset_meta
from paddleseg_ddr.datasets.mini_voc import generate_mini_voc
from paddleseg_ddr.datasets.voc import CLASSES, DDRPascalVOC
from paddleseg_ddr.datasets.voc_aug import convert_voc_aug
from paddleseg_ddr.errors import UserError

NORMALIZE = [Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])]
# VOC devkit colours (VOClabelcolormap.m), copied by hand: index -> RGB
DEVKIT = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128), 5: (128, 0, 128),
          6: (0, 128, 128), 7: (128, 128, 128), 8: (64, 0, 0), 12: (64, 0, 128), 15: (192, 128, 128),
          16: (0, 64, 0), 19: (128, 192, 0), 20: (0, 64, 128), 255: (224, 224, 192)}


def lines(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def tiny(tmp_path, convert=False):
    """A small miniature of its own (a test may damage it)."""
    info = generate_mini_voc(str(tmp_path / 'mini'), num_trainaug=6, num_val=2, width=48, height=40)
    if convert:
        info['counts'] = convert_voc_aug(info['voc_root'], info['sbd_root'])
    info['voc'] = os.path.join(info['voc_root'], 'VOC2012')
    return info


def test_metainfo_is_voc(mini_voc):
    meta = dataset_meta('DDRPascalVOC')
    assert meta is DDRPascalVOC.METAINFO and meta.num_classes == 21 and meta.ignore_index == 255
    assert meta.classes[0] == 'background' and meta.classes[15] == 'person' and meta.classes[20] == 'tvmonitor'
    assert meta.classes == CLASSES and meta.label_ids is None
    for index, colour in DEVKIT.items():
        if index < 21:
            assert meta.palette[index] == colour, index
    # the PNGs the converter writes carry the devkit palette, 255 included
    name = lines(os.path.join(mini_voc['voc_root'], 'VOC2012', 'ImageSets', 'Segmentation', 'trainaug.txt'))[-1]
    png = Image.open(os.path.join(mini_voc['voc_root'], 'VOC2012', 'SegmentationClassAug', name + '.png'))
    palette = np.array(png.getpalette()).reshape(-1, 3)
    for index, colour in DEVKIT.items():
        assert tuple(palette[index]) == colour, index


def test_converter_against_scipy_and_set_arithmetic(mini_voc):
    """trainaug = (SBD train ∪ SBD val ∪ VOC train) − VOC val, computed here from the lists;
    each label is VOC's own PNG (byte for byte) for VOC train images, else SBD's
    GTcls.Segmentation as SciPy reads it here; palette PNGs, values 0-20 and 255."""
    voc = os.path.join(mini_voc['voc_root'], 'VOC2012')
    sbd = os.path.join(mini_voc['sbd_root'], 'dataset')
    sets = os.path.join(voc, 'ImageSets', 'Segmentation')
    voc_train, voc_val = set(lines(os.path.join(sets, 'train.txt'))), set(lines(os.path.join(sets, 'val.txt')))
    sbd_all = set(lines(os.path.join(sbd, 'train.txt'))) | set(lines(os.path.join(sbd, 'val.txt')))
    # the miniature has every case the real lists have
    assert sbd_all & voc_train and sbd_all & voc_val and sbd_all - voc_train - voc_val and voc_train - sbd_all
    expected = (sbd_all | voc_train) - voc_val
    listed = lines(os.path.join(sets, 'trainaug.txt'))
    assert listed == sorted(expected)
    counts = mini_voc['counts']
    assert (counts['trainaug'], counts['from_voc'], counts['from_sbd']) == (
        len(expected), len(voc_train), len(expected - voc_train)) == (24, 8, 16)
    assert counts['sbd_in_voc_val'] == len(sbd_all & voc_val) == 3
    out = os.path.join(voc, 'SegmentationClassAug')
    assert sorted(os.listdir(out)) == sorted(n + '.png' for n in expected)  # nothing for VOC val images
    differs = 0
    for name in listed:
        png = Image.open(os.path.join(out, name + '.png'))
        assert png.mode == 'P', name
        label = np.array(png)
        assert set(np.unique(label).tolist()) <= set(range(21)) | {255}
        if name in voc_train:
            with open(os.path.join(voc, 'SegmentationClass', name + '.png'), 'rb') as a, \
                    open(os.path.join(out, name + '.png'), 'rb') as b:
                assert a.read() == b.read(), name
            if name in sbd_all:  # VOC's label wins over SBD's (they differ: VOC's has borders)
                sbd_label = loadmat(os.path.join(sbd, 'cls', name + '.mat'))['GTcls'][0, 0]['Segmentation']
                differs += not np.array_equal(sbd_label, label)
        else:
            mat = loadmat(os.path.join(sbd, 'cls', name + '.mat'))
            np.testing.assert_array_equal(label, mat['GTcls'][0, 0]['Segmentation'], err_msg=name)
            assert len(np.unique(label)) > 1
    assert differs > 0


def test_mini_sbd_mat_files_have_sbd_structure(mini_voc):
    sbd = os.path.join(mini_voc['sbd_root'], 'dataset', 'cls')
    mat = loadmat(os.path.join(sbd, sorted(os.listdir(sbd))[0]))
    gt = mat['GTcls']
    assert gt.shape == (1, 1) and set(gt.dtype.names) == {'Segmentation', 'Boundaries', 'CategoriesPresent'}
    seg, bounds, present = gt[0, 0]['Segmentation'], gt[0, 0]['Boundaries'], gt[0, 0]['CategoriesPresent']
    assert seg.dtype == np.uint8 and seg.ndim == 2 and 255 not in seg  # SBD has no border band
    assert bounds.shape == (20, 1) and sorted(present.ravel().tolist()) == sorted(set(np.unique(seg)) - {0})
    for c in present.ravel():
        assert bounds[c - 1, 0].nnz > 0  # each present class has its outline


def test_palette_labels_are_read_as_indices(mini_voc):
    """The dataset hands on the PNG's indices (class ids with 255 borders), not its colours."""
    ds = DDRPascalVOC(NORMALIZE, mini_voc['voc_root'], mode='val')
    assert len(ds) == 8 and ds.num_classes == 21
    for i in range(len(ds)):
        label = ds[i]['label'][0]
        with Image.open(ds.file_list[i][1]) as png:
            assert png.mode == 'P'
            np.testing.assert_array_equal(label, np.array(png))
            rgb = np.array(png.convert('RGB'))
        values = set(np.unique(label).tolist())
        assert 255 in values and 0 in values and len(values) >= 3 and values <= set(range(21)) | {255}
        cls = max(values - {0, 255})
        assert tuple(rgb[label == cls][0]) == DEVKIT.get(cls, tuple(rgb[label == cls][0]))
    assert len(DDRPascalVOC(NORMALIZE, mini_voc['voc_root'], mode='train')) == 8
    train = DDRPascalVOC(NORMALIZE, os.path.join(mini_voc['voc_root'], 'VOC2012'), mode='trainaug')
    assert len(train) == 24 and all('SegmentationClassAug' in label for _, label in train.file_list)
    sample = train[0]
    assert sample['img'].shape[0] == 3 and sample['label'].shape == sample['img'].shape[1:]


def test_trainaug_not_prepared_is_explained(tmp_path):
    info = tiny(tmp_path)
    with pytest.raises(UserError) as e:
        DDRPascalVOC(NORMALIZE, info['voc_root'], mode='trainaug')
    msg = str(e.value)
    assert 'not prepared' in msg and 'trainaug.txt' in msg and 'tools/convert_voc_aug.py' in msg
    assert 'benchmark.tgz' in msg and 'mode: train' in msg


def test_missing_folders_files_and_list_entries_are_named(tmp_path):
    info = tiny(tmp_path, convert=True)
    voc, root = info['voc'], info['voc_root']
    with pytest.raises(UserError, match="folder '.*nowhere' does not exist.*VOCtrainval_11-May-2012.tar"):
        DDRPascalVOC(NORMALIZE, str(tmp_path / 'nowhere'))
    with pytest.raises(UserError, match="expected 'JPEGImages/'"):
        DDRPascalVOC(NORMALIZE, str(tmp_path))
    with pytest.raises(UserError, match="mode must be one of"):
        DDRPascalVOC(NORMALIZE, root, mode='test')
    val = lines(os.path.join(voc, 'ImageSets', 'Segmentation', 'val.txt'))
    os.remove(os.path.join(voc, 'JPEGImages', val[0] + '.jpg'))
    with pytest.raises(UserError, match=rf"1 of the 2 names in '.*val.txt' have no image, e.g. '.*{val[0]}.jpg'"):
        DDRPascalVOC(NORMALIZE, root, mode='val')
    aug = lines(os.path.join(voc, 'ImageSets', 'Segmentation', 'trainaug.txt'))
    os.remove(os.path.join(voc, 'SegmentationClassAug', aug[1] + '.png'))
    with pytest.raises(UserError, match=rf"have no label, e.g. '.*SegmentationClassAug.*{aug[1]}.png'.*--overwrite"):
        DDRPascalVOC(NORMALIZE, root, mode='trainaug')
    with open(os.path.join(voc, 'ImageSets', 'Segmentation', 'train.txt'), 'a') as f:
        f.write('JPEGImages/2007_000032.jpg SegmentationClass/2007_000032.png\n')
    with pytest.raises(UserError, match=r"train.txt', line \d+: expected one image name per line"):
        DDRPascalVOC(NORMALIZE, root, mode='train')
    os.remove(os.path.join(voc, 'ImageSets', 'Segmentation', 'trainval.txt'))
    with pytest.raises(UserError, match="split list '.*trainval.txt' not found"):
        DDRPascalVOC(NORMALIZE, root, mode='trainval')
    shutil.rmtree(os.path.join(voc, 'SegmentationClassAug'))
    with pytest.raises(UserError, match="label folder '.*SegmentationClassAug' does not exist.*convert_voc_aug"):
        DDRPascalVOC(NORMALIZE, root, mode='trainaug')


def test_a_colour_label_is_refused_naming_the_file(tmp_path):
    info = tiny(tmp_path)
    ds = DDRPascalVOC(NORMALIZE, info['voc_root'], mode='val')
    path = ds.file_list[0][1]
    Image.open(path).convert('RGB').save(path)
    with pytest.raises(UserError, match=rf"label file '{path}' has 3 channels.*VOCtrainval_11-May-2012.tar"):
        ds[0]


def test_converter_never_overwrites_unasked_and_keeps_other_files(tmp_path):
    info = tiny(tmp_path, convert=True)
    out = os.path.join(info['voc'], 'SegmentationClassAug')
    mine = os.path.join(out, 'my_notes.txt')
    with open(mine, 'w') as f:
        f.write('mine')
    before = {n: open(os.path.join(out, n), 'rb').read() for n in os.listdir(out)}
    with pytest.raises(UserError, match='exist already.*--overwrite'):
        convert_voc_aug(info['voc_root'], info['sbd_root'])
    assert {n: open(os.path.join(out, n), 'rb').read() for n in os.listdir(out)} == before
    counts = convert_voc_aug(info['voc_root'], info['sbd_root'], overwrite=True, num_workers=2)
    assert counts['trainaug'] == info['counts']['trainaug'] == 6
    assert {n: open(os.path.join(out, n), 'rb').read() for n in os.listdir(out)} == before  # same output, file kept
    assert not [n for n in os.listdir(out) if '.tmp-' in n]


def test_converter_errors_name_the_file(tmp_path):
    info = tiny(tmp_path)
    sbd = os.path.join(info['sbd_root'], 'dataset')
    sbd_only = sorted(set(lines(os.path.join(sbd, 'train.txt')) + lines(os.path.join(sbd, 'val.txt')))
                      - set(lines(os.path.join(info['voc'], 'ImageSets', 'Segmentation', 'train.txt')))
                      - set(lines(os.path.join(info['voc'], 'ImageSets', 'Segmentation', 'val.txt'))))
    mat = os.path.join(sbd, 'cls', sbd_only[0] + '.mat')
    list_path = os.path.join(info['voc'], 'ImageSets', 'Segmentation', 'trainaug.txt')

    def fails(pattern):
        with pytest.raises(UserError, match=pattern):
            convert_voc_aug(info['voc_root'], info['sbd_root'], overwrite=True)
        assert not os.path.exists(list_path)  # no list: the set is not marked complete

    with pytest.raises(UserError, match="--voc_root '.*' holds no VOC2012/JPEGImages/"):
        convert_voc_aug(str(tmp_path), info['sbd_root'])
    with pytest.raises(UserError, match="--sbd_root '.*' holds no dataset/cls/.*benchmark.tgz"):
        convert_voc_aug(info['voc_root'], str(tmp_path))
    original = open(mat, 'rb').read()
    with open(mat, 'wb') as f:
        f.write(original[:len(original) // 2])
    fails(rf"SBD annotation '{mat}' cannot be read as a MATLAB file")
    with pytest.raises(UserError, match="exist already.*an earlier run stopped before the end.*--overwrite"):
        convert_voc_aug(info['voc_root'], info['sbd_root'])
    savemat(mat, {'GTinst': {'Segmentation': np.zeros((40, 48), np.uint8)}})
    fails(rf"SBD annotation '{mat}' has no 'GTcls' struct.*inst")
    savemat(mat, {'GTcls': {'Segmentation': np.full((40, 48), 37, np.uint8)}})
    fails(rf"'{mat}': GTcls.Segmentation holds values \[37\] outside the classes 0-20")
    savemat(mat, {'GTcls': {'Segmentation': np.zeros((20, 48), np.uint8)}})
    fails(r"is 48x20 pixels but its image .* is 4\dx\d\d")
    os.remove(mat)
    fails(rf"1 images of SBD's train.txt/val.txt have no class annotation .* e.g. '{sbd_only[0]}.mat'")
    os.remove(os.path.join(sbd, 'val.txt'))
    fails(r"list '.*val.txt' not found. It comes with SBD's benchmark.tgz")


def test_generator_is_deterministic_and_refuses_bad_sizes(tmp_path):
    a = generate_mini_voc(str(tmp_path / 'a'), num_trainaug=3, num_val=1, width=40, height=32, seed=3)
    b = generate_mini_voc(str(tmp_path / 'b'), num_trainaug=3, num_val=1, width=40, height=32, seed=3)
    for sub in ('VOCdevkit/VOC2012/JPEGImages', 'VOCdevkit/VOC2012/SegmentationClass'):
        names = sorted(os.listdir(os.path.join(a['root'], sub)))
        assert names and names == sorted(os.listdir(os.path.join(b['root'], sub)))
        for n in names:
            assert open(os.path.join(a['root'], sub, n), 'rb').read() == open(os.path.join(b['root'], sub, n), 'rb').read()
    with pytest.raises(UserError, match='--width and --height must be at least 32 pixels, got 8x120'):
        generate_mini_voc(str(tmp_path / 'c'), width=8)
    with pytest.raises(UserError, match='--num_val must be a whole number of at least 1'):
        generate_mini_voc(str(tmp_path / 'c'), num_val=0)
    (tmp_path / 'file').write_text('x')
    with pytest.raises(UserError, match="is a file, not a folder"):
        generate_mini_voc(str(tmp_path / 'file'))


def test_rdrnet_voc_recipe_fine_tunes_s_simple_from_cityscapes_weights(mini_voc, tmp_path):
    """RDRNet's VOC setting (24,400 iterations, 2 x 12 images, lr 0.001, scale 0.5-2.0 of the
    short side at 512, 512 crops, OHEM 0.9/131072 on both heads) on trainaug, as S-Simple: 19-class
    Cityscapes weights load into every layer but the classifiers."""
    import paddle
    from paddleseg.cvlibs import manager

    from paddleseg_ddr.engine import Builder, load_config
    config = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'rdrnet',
                          'rdrnet_s_simple_voc12aug_512x512_24k.yml')
    paddle.seed(1)
    cityscapes = manager.MODELS['RDRNetSSimple'](num_classes=19)
    state = {k: v.numpy() for k, v in cityscapes.state_dict().items()}
    weights = str(tmp_path / 'cityscapes.pdparams')
    paddle.save(cityscapes.state_dict(), weights)
    cfg = load_config(config, opts=[f'model.pretrained={weights}', f"train_dataset.dataset_root={mini_voc['voc_root']}",
                                    f"val_dataset.dataset_root={mini_voc['voc_root']}"])
    assert (cfg.iters, cfg.batch_size, cfg.lr_scheduler_cfg['learning_rate']) == (24400, 12, 0.001)
    train, val = cfg.train_dataset_cfg, cfg.val_dataset_cfg
    assert (train['type'], train['mode'], val['mode']) == ('DDRPascalVOC', 'trainaug', 'val')
    steps = {t['type']: t for t in train['transforms']}
    assert steps['ResizeByShort']['short_size'] == 512 and steps['RandomPaddingCrop']['crop_size'] == [512, 512]
    assert (steps['ResizeStepScaling']['min_scale_factor'], steps['ResizeStepScaling']['max_scale_factor']) == (0.5, 2.0)
    assert {(t['type'], t['thresh'], t['min_kept'], t['weight']) for t in cfg.dic['loss']['types']} == \
        {('DDROhemCrossEntropyLoss', 0.9, 131072, None)} and cfg.dic['loss']['coef'] == [1, 0.4]
    builder = Builder(cfg)
    model = builder.model
    assert cfg.dic['model']['type'] == 'RDRNetSSimple' and cfg.dic['model']['num_classes'] == 21
    assert len(builder.train_dataset) == 24 and len(builder.val_dataset) == 8
    classifier = tuple(model.CLASSIFIER_PREFIXES)
    loaded = 0
    for key, value in model.state_dict().items():
        if key.startswith(classifier):
            assert value.shape[0] == 21 and state[key].shape[0] == 19, key
        else:
            np.testing.assert_array_equal(value.numpy(), state[key], err_msg=key)
            loaded += 1
    assert loaded == len(state) - len([k for k in state if k.startswith(classifier)]) > 100
