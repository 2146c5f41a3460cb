#!/bin/bash
# Prepare a TIPC run, offline: generate the mini Cityscapes (official layout, labels converted
# with the project's own tool) instead of downloading a dataset, and link it where the
# configs read it (test_tipc/data/mini_cityscapes).
#   bash test_tipc/prepare.sh test_tipc/configs/ddrnet23_slim/train_infer_python.txt lite_train_lite_infer
# Modes: lite_train_lite_infer, lite_train_whole_infer (small images to train, 2048x1024 to
# infer), whole_infer (no training: exports the weights given as 3rd argument, or the ones a
# short training makes here), whole_train_whole_infer (2048x1024 images throughout).
set -e
FILENAME=$(realpath "$1")
MODE=$2
WEIGHTS=${3:-}
cd "$(dirname "$0")/.."
source test_tipc/common_func.sh
mapfile -t lines < "${FILENAME}"
model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")

case ${MODE} in
    lite_train_lite_infer)   train=(8 4 512 256);   infer=(lite 4) ;;
    lite_train_whole_infer)  train=(8 4 512 256);   infer=(whole 2) ;;
    whole_infer)             train=(8 4 512 256);   infer=(whole 2) ;;
    whole_train_whole_infer) train=(16 4 2048 1024); infer=(whole 2) ;;
    *) echo "unknown mode '${MODE}': use lite_train_lite_infer, lite_train_whole_infer, whole_infer or whole_train_whole_infer" >&2
       exit 2 ;;
esac

data=test_tipc/data
# CamVid configs (their txt names test_tipc/data/mini_camvid): the mini CamVid release, converted by
# the project's converter as real CamVid is, linked at test_tipc/data/mini_camvid with infer.list
# (its test images; 960x720 ones for the whole modes). The mini Cityscapes below is made as well.
if grep -q 'data/mini_camvid' "${FILENAME}"; then
    camvid() {  # folder width height num_test
        ${python} tools/make_mini_camvid.py --root "$1" --num_train 8 --num_val 4 --num_test "$4" --width "$2" --height "$3"
        ${python} tools/convert_camvid.py --root "$1" --overwrite > /dev/null
    }
    size=(240 180); [ "${MODE}" = "whole_train_whole_infer" ] && size=(960 720)
    camvid ${data}/mini_camvid_${size[0]}x${size[1]} "${size[@]}" 4
    ln -sfn "mini_camvid_${size[0]}x${size[1]}" ${data}/mini_camvid
    infer_root=.
    if [ "${infer[0]}" = "whole" ]; then camvid ${data}/mini_camvid_960x720 960 720 4; infer_root=../mini_camvid_960x720; fi
    (cd ${data}/mini_camvid && sed -E 's#^/SegNet/CamVid/test/([^ ]+).*#'"${infer_root}"'/images/\1#' test.txt | head -n "${infer[1]}" > infer.list)
    echo "CamVid inference images: $(wc -l < ${data}/mini_camvid/infer.list) in ${data}/mini_camvid/infer.list"
fi
generate() {  # folder num_train num_val width height
    ${python} tools/make_mini_cityscapes.py --root "$1" --num_train "$2" --num_val "$3" --width "$4" --height "$5"
}
generate ${data}/mini_cityscapes_${train[2]}x${train[3]} "${train[@]}"
ln -sfn "mini_cityscapes_${train[2]}x${train[3]}" ${data}/mini_cityscapes
# the images inference runs on (a list file, paths relative to it), 2048x1024 for "whole"
if [ "${infer[0]}" = "whole" ]; then
    generate ${data}/mini_cityscapes_2048x1024 16 4 2048 1024
    infer_root=../mini_cityscapes_2048x1024
else
    infer_root=.
fi
(cd ${data}/mini_cityscapes && find -L ${infer_root}/leftImg8bit/val -name '*.png' | sort | head -n "${infer[1]}" > infer.list)
echo "inference images: $(wc -l < ${data}/mini_cityscapes/infer.list) in ${data}/mini_cityscapes/infer.list"

# Pascal VOC configs (model_name *_voc): the miniature VOC 2012 + SBD, its trainaug made by the
# same converter as the real data, at test_tipc/data/mini_voc; inference on its val images.
case ${model_name} in
    *_voc)
        if [ "${infer[0]}" = "whole" ]; then voc_size=(500 375); else voc_size=(160 120); fi
        voc=mini_voc_${voc_size[0]}x${voc_size[1]}
        ${python} tools/make_mini_voc.py --root ${data}/${voc} --width ${voc_size[0]} --height ${voc_size[1]}
        ln -sfn "${voc}" ${data}/mini_voc
        (cd ${data}/mini_voc && sed -e 's|^|VOCdevkit/VOC2012/JPEGImages/|' -e 's|$|.jpg|' \
            VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt | head -n "${infer[1]}" > infer.list)
        echo "VOC inference images: $(wc -l < ${data}/mini_voc/infer.list) in ${data}/mini_voc/infer.list" ;;
esac

# The weights whole_infer exports (train_infer_python.txt: infer_model, line 36; its trainer,
# line 15), and those a PTQ chain quantizes in either of its modes (train_ptq_infer_python.txt:
# --model_path, line 12; weights_train, line 13).
ptq=false
if [[ "${lines[0]}" == *ptq_params* ]]; then ptq=true; fi
if [ "${MODE}" = "whole_infer" ] || ${ptq}; then
    if ${ptq}; then
        infer_model=$(func_parser_value "${lines[12]}")
        train_cmd=$(func_parser_value "${lines[13]}")
    else
        infer_model=$(func_parser_value "${lines[36]}")
        train_cmd=$(func_parser_value "${lines[15]}")
    fi
    mkdir -p "$(dirname "${infer_model}")"
    if [ -n "${WEIGHTS}" ]; then
        cp "${WEIGHTS}" "${infer_model}"
    elif [ ! -f "${infer_model}" ]; then   # no weights given: a short training makes some
        out=test_tipc/output/${model_name}/${MODE}_weights
        ${python} ${train_cmd} --iters 10 --save_dir "${out}"
        cp "${out}/best_model/model.pdparams" "${infer_model}"
    fi
    echo "weights for ${MODE}: ${infer_model}"
fi
