#!/bin/bash
# TIPC post-training quantization chain, driven by a PaddleSeg-format train_ptq_infer_python.txt:
# quantize (tools/quantize.py: export the weights to fp32 + ONNX, then int8 calibrated on
# training images) -> evaluate the int8 model (val.py --model_dir --engine E --precision int8,
# each engine listed) -> infer with it (each engine's deploy/<engine>/infer.py --precision int8).
#   bash test_tipc/prepare.sh test_tipc/configs/ddrnet23_slim/train_ptq_infer_python.txt whole_infer
#   bash test_tipc/test_ptq_inference_python.sh test_tipc/configs/ddrnet23_slim/train_ptq_infer_python.txt whole_infer
# Modes: whole_infer (PaddleSeg's PTQ mode: 2048x1024 inference images) and
# lite_train_lite_infer (the small images of the lite modes); neither trains: the weights are
# the --model_path file prepare.sh put in place. Logging and exit status as in
# test_train_inference_python.sh: results in test_tipc/output/<model>/results_python.log, each
# step's output in test_tipc/output/<model>/<mode>/*.log; exit 1 if a step failed or none ran,
# 2 on a config or mode it cannot use.
FILENAME=$(realpath "$1")
MODE=$2
cd "$(dirname "$0")/.."
source test_tipc/common_func.sh

case ${MODE} in
    whole_infer|lite_train_lite_infer) ;;
    *) echo "unknown mode '${MODE}' for the PTQ chain: use whole_infer or lite_train_lite_infer" >&2
       exit 2 ;;
esac
mapfile -t lines < "${FILENAME}"
if [ "${#lines[@]}" -lt 27 ] || [[ "${lines[0]}" != *ptq_params* ]]; then
    echo "${FILENAME}: not a train_ptq_infer_python.txt (27 lines starting with ptq_params)" >&2
    exit 2
fi

# ptq_params (line numbers counted from 0)
model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")
model_dir_key=$(func_parser_key "${lines[4]}")
model_dir=$(func_parser_value "${lines[4]}")
config_key=$(func_parser_key "${lines[6]}")
config_value=$(func_parser_value "${lines[6]}")
calib_key=$(func_parser_key "${lines[7]}")
calib_value=$(func_parser_value "${lines[7]}")
method_key=$(func_parser_key "${lines[8]}")
method_value=$(func_parser_value "${lines[8]}")
trainer=$(func_parser_value "${lines[10]}")
ptq_key=$(func_parser_key "${lines[11]}")
ptq_py=$(func_parser_value "${lines[11]}")
weights_key=$(func_parser_key "${lines[12]}")
weights=$(func_parser_value "${lines[12]}")
# eval_params
eval_py=$(func_parser_value "${lines[15]}")
eval_engine_key=$(func_parser_key "${lines[16]}")
eval_engines=$(func_parser_value "${lines[16]}")
eval_precision_key=$(func_parser_key "${lines[17]}")
eval_precision=$(func_parser_value "${lines[17]}")
# infer_params: "inference:engine=script|engine=script"
inference=$(func_parser_value "${lines[20]}")
batch_key=$(func_parser_key "${lines[21]}")
batch_list=$(func_parser_value "${lines[21]}")
model_key=$(func_parser_key "${lines[22]}")
image_key=$(func_parser_key "${lines[23]}")
image_value=$(func_parser_value "${lines[23]}")
benchmark_key=$(func_parser_key "${lines[24]}")
benchmark_value=$(func_parser_value "${lines[24]}")
precision_key=$(func_parser_key "${lines[25]}")
precision_value=$(func_parser_value "${lines[25]}")
save_dir_key=$(func_parser_key "${lines[26]}")

if [ "${trainer}" != "${ptq_key}" ]; then
    echo "${FILENAME}: trainer '${trainer}' has no line (line 11 is '${ptq_key}')" >&2
    exit 2
fi

LOG_PATH="test_tipc/output/${model_name}/${MODE}"
mkdir -p "${LOG_PATH}"
status_log="test_tipc/output/${model_name}/results_python.log"

# 1. quantize: export the weights (fp32 + ONNX) into model_dir, then int8
if [ ! -f "${weights}" ]; then
    echo "no weights at '${weights}' (line 12): run test_tipc/prepare.sh ${1} ${MODE} first" >&2
    exit 1
fi
_log="${LOG_PATH}/ptq.log"
cmd="${python} ${ptq_py} $(func_set_params "${config_key}" "${config_value}") $(func_set_params "${weights_key}" "${weights}") $(func_set_params "${model_dir_key}" "${model_dir}") $(func_set_params "${calib_key}" "${calib_value}") $(func_set_params "${method_key}" "${method_value}")"
echo "${cmd}"
eval "${cmd} > ${_log} 2>&1"
status_check $? "${cmd}" "${status_log}" "${model_name}"
[ -f "${model_dir}/model.int8.onnx" ] || { echo "no int8 model in ${model_dir}: see ${_log}" >&2; tail -n 20 "${_log}" >&2; exit 1; }

# 2. evaluate the int8 model on the config's val set with each engine
IFS='|' read -ra engines <<< "${eval_engines}"
for engine in "${engines[@]}"; do
    _log="${LOG_PATH}/eval_${engine}_${eval_precision}.log"
    cmd="${python} ${eval_py} --model_dir=${model_dir} $(func_set_params "${eval_engine_key}" "${engine}") $(func_set_params "${eval_precision_key}" "${eval_precision}")"
    echo "${cmd}"
    eval "${cmd} > ${_log} 2>&1"
    status_check $? "${cmd}" "${status_log}" "${model_name}"
    grep -h "mIoU" "${_log}" | tail -n 1
done

# 3. infer with each engine's deploy script
IFS='|' read -ra scripts <<< "${inference}"
IFS='|' read -ra batches <<< "${batch_list}"
for entry in "${scripts[@]}"; do
    engine=${entry%%=*}
    script=${entry#*=}
    for batch in "${batches[@]}"; do
        name="python_infer_${engine}_precision_${precision_value}_batchsize_${batch}"
        _log="${LOG_PATH}/${name}.log"
        cmd="${python} ${script} $(func_set_params "${model_key}" "${model_dir}") $(func_set_params "${image_key}" "${image_value}") $(func_set_params "${batch_key}" "${batch}") $(func_set_params "${benchmark_key}" "${benchmark_value}") $(func_set_params "${precision_key}" "${precision_value}") $(func_set_params "${save_dir_key}" "${LOG_PATH}/${name}") --model_name=${model_name}"
        echo "${cmd}"
        eval "${cmd} > ${_log} 2>&1"
        status_check $? "${cmd}" "${status_log}" "${model_name}"
    done
done

if [ "${STEPS_RUN}" -eq 0 ]; then
    echo "no step ran" >&2
    exit 1
fi
[ "${FAILED_STEPS}" -eq 0 ] || exit 1
