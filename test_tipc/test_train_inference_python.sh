#!/bin/bash
# TIPC: train -> evaluate -> export -> Paddle Inference, driven by a PaddleSeg-format config.
#   bash test_tipc/test_train_inference_python.sh test_tipc/configs/ddrnet23_slim/train_infer_python.txt lite_train_lite_infer
# Every command is logged as "Run successfully with command - ..." or "Run failed with
# command - ..." in test_tipc/output/<model>/results_python.log; each step's own output goes
# to test_tipc/output/<model>/<mode>/*.log. Exits 1 if any step failed or if no step ran at
# all (every trainer null, every gpu_list entry a GPU on a machine without one), 2 on a
# config it cannot read (unknown mode, too few lines, a trainer name the config lacks).
FILENAME=$(realpath "$1")
MODE=$2
cd "$(dirname "$0")/.."
source test_tipc/common_func.sh

case ${MODE} in
    lite_train_lite_infer|lite_train_whole_infer|whole_infer|whole_train_whole_infer) ;;
    *) echo "unknown mode '${MODE}': use lite_train_lite_infer, lite_train_whole_infer, whole_infer or whole_train_whole_infer" >&2
       exit 2 ;;
esac
mapfile -t lines < "${FILENAME}"
if [ "${#lines[@]}" -lt 52 ]; then
    echo "${FILENAME}: ${#lines[@]} lines, a train_infer_python.txt has at least 52" >&2
    exit 2
fi

# train_params (line numbers as in PaddleSeg's TIPC, counted from 0)
model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")
gpu_list=$(func_parser_value "${lines[3]}")
train_use_gpu_key=$(func_parser_key "${lines[4]}")
train_use_gpu_value=$(func_parser_value "${lines[4]}")
autocast_key=$(func_parser_key "${lines[5]}")
autocast_list=$(func_parser_value "${lines[5]}")
epoch_key=$(func_parser_key "${lines[6]}")
epoch_num=$(func_parser_params "${lines[6]}")
save_model_key=$(func_parser_key "${lines[7]}")
train_batch_key=$(func_parser_key "${lines[8]}")
train_batch_value=$(func_parser_params "${lines[8]}")
pretrain_model_key=$(func_parser_key "${lines[9]}")
pretrain_model_value=$(func_parser_value "${lines[9]}")
train_model_name=$(func_parser_value "${lines[10]}")
train_infer_img_dir=$(func_parser_value "${lines[11]}")
train_param_key1=$(func_parser_key "${lines[12]}")
train_param_value1=$(func_parser_value "${lines[12]}")
# trainers: "trainer:" (line 14) names the ones to run, '|'-separated; as in PaddleSeg, a
# trainer's name is the key of its line (15 norm_train, 16 pact_train, 17 fpgm_train,
# 18 distill_train, 19 and 20 free), its command the value, and its export the value 14
# lines below (29 norm_export, 30 quant_export, 31 fpgm_export, 32 distill_export, 33, 34).
# "norm" is accepted for the line-15 trainer (PaddleSeg runs any unknown name as that one).
trainer_list=$(func_parser_value "${lines[14]}")
trainer_keys=() trainer_cmds=() trainer_exports=()
for i in 15 16 17 18 19 20; do
    trainer_keys+=("$(func_parser_key "${lines[$i]}")")
    trainer_cmds+=("$(func_parser_value "${lines[$i]}")")
    trainer_exports+=("$(func_parser_value "${lines[$((i + 14))]}")")
done
# eval_params
eval_py=$(func_parser_value "${lines[23]}")
eval_key1=$(func_parser_key "${lines[24]}")
eval_value1=$(func_parser_value "${lines[24]}")
# export_params
save_infer_key=$(func_parser_key "${lines[27]}")
export_weight_key=$(func_parser_key "${lines[28]}")
# infer_params
infer_model=$(func_parser_value "${lines[36]}")
infer_export=$(func_parser_value "${lines[37]}")
inference_py=$(func_parser_value "${lines[39]}")
use_gpu_key=$(func_parser_key "${lines[40]}")
use_gpu_list=$(func_parser_value "${lines[40]}")
use_mkldnn_key=$(func_parser_key "${lines[41]}")
use_mkldnn_list=$(func_parser_value "${lines[41]}")
cpu_threads_key=$(func_parser_key "${lines[42]}")
cpu_threads_list=$(func_parser_value "${lines[42]}")
batch_size_key=$(func_parser_key "${lines[43]}")
batch_size_list=$(func_parser_value "${lines[43]}")
use_trt_key=$(func_parser_key "${lines[44]}")
use_trt_list=$(func_parser_value "${lines[44]}")
precision_key=$(func_parser_key "${lines[45]}")
precision_list=$(func_parser_value "${lines[45]}")
infer_model_key=$(func_parser_key "${lines[46]}")
image_dir_key=$(func_parser_key "${lines[47]}")
infer_img_dir=$(func_parser_value "${lines[47]}")
save_log_key=$(func_parser_key "${lines[48]}")
benchmark_key=$(func_parser_key "${lines[49]}")
benchmark_value=$(func_parser_value "${lines[49]}")
infer_key1=$(func_parser_key "${lines[50]}")
infer_key2=$(func_parser_key "${lines[51]}")
infer_value2=$(func_parser_value "${lines[51]}")

OUTPUT=./test_tipc/output/${model_name}
LOG_PATH=${OUTPUT}/${MODE}
mkdir -p "${LOG_PATH}"
status_log=${OUTPUT}/results_python.log
echo "------------------------ ${MODE} ------------------------" >> "${status_log}"
if has_gpu "${python}"; then GPU_PRESENT=1; else GPU_PRESENT=0; fi
SKIPPED=()   # what was not run, and why: repeated when nothing ran at all

function skip() {  # message: say what is not run; kept for the summary
    echo "skip $*"
    SKIPPED+=("$*")
}

function trainer_index() {  # name -> index into trainer_keys (0 = line 15); 1 if the config has no such trainer
    local name=$1 i
    [ "${name}" = "norm" ] && name=${trainer_keys[0]}
    for i in "${!trainer_keys[@]}"; do
        if [ "${trainer_keys[$i]}" != "null" ] && [ "${trainer_keys[$i]}" = "${name}" ]; then
            echo "${i}"
            return 0
        fi
    done
    return 1
}

function run_step() {  # log_file command...: run, keep its output in the log, record the status
    local log=$1; shift
    local cmd="$*"
    echo "+ ${cmd}"
    eval "${cmd}" > "${log}" 2>&1
    local status=$?
    [ ${status} -ne 0 ] && tail -n 20 "${log}"
    status_check ${status} "${cmd}" "${status_log}" "${model_name}"
    return ${status}
}

function func_infer_once() {  # name device_flags benchmark_log|null
    # One inference run: the device's flags, then the ones every run takes. Reads the
    # variables of the func_inference loop that calls it (_python, _script, _model_dir,
    # _img_dir, _log_path, batch_size, precision).
    local name=$1
    run_step "${_log_path}/${name}.log" "${_python} ${_script} $2" \
        "$(func_set_params "${infer_model_key}" "${_model_dir}")" \
        "$(func_set_params "${batch_size_key}" "${batch_size}")" \
        "$(func_set_params "${image_dir_key}" "${_img_dir}")" \
        "$(func_set_params "${benchmark_key}" "${benchmark_value}")" \
        "$(func_set_params "${precision_key}" "${precision}")" \
        "$(func_set_params "${save_log_key}" "$3")" \
        "$(func_set_params "${infer_key1}" "${_log_path}/${name}_results")" \
        "$(func_set_params "${infer_key2}" "${infer_value2}")"
}

function func_inference() {  # python script model_dir log_path images
    local _python=$1 _script=$2 _model_dir="$3/deploy.yaml" _log_path=$4 _img_dir=$5
    local device use_mkldnn threads batch_size precision use_trt name
    IFS='|' read -ra devices <<< "${use_gpu_list}"
    IFS='|' read -ra mkldnns <<< "${use_mkldnn_list}"
    IFS='|' read -ra threads_list <<< "${cpu_threads_list}"
    IFS='|' read -ra batches <<< "${batch_size_list}"
    IFS='|' read -ra precisions <<< "${precision_list}"
    IFS='|' read -ra trts <<< "${use_trt_list}"
    for device in "${devices[@]}"; do
        if [ "${device}" = "cpu" ] || [ "${device}" = "False" ]; then
            for use_mkldnn in "${mkldnns[@]}"; do
                for threads in "${threads_list[@]}"; do
                    for batch_size in "${batches[@]}"; do
                        for precision in "${precisions[@]}"; do
                            [ "${precision}" != "fp32" ] && continue   # the CPU runs fp32 exports
                            name=python_infer_cpu_usemkldnn_${use_mkldnn}_threads_${threads}_precision_${precision}_batchsize_${batch_size}
                            func_infer_once "${name}" \
                                "${use_gpu_key}=cpu ${use_mkldnn_key}=${use_mkldnn} $(func_set_params "${cpu_threads_key}" "${threads}")" \
                                "${_log_path}/${name}_benchmark.log"
                        done
                    done
                done
            done
        elif [ "${device}" = "gpu" ] || [ "${device}" = "True" ]; then
            if [ ${GPU_PRESENT} -eq 0 ]; then
                skip "GPU inference of ${model_name}: no GPU visible to Paddle on this machine"
                continue
            fi
            for use_trt in "${trts[@]}"; do
                for precision in "${precisions[@]}"; do
                    # fp16/int8 need TensorRT here; int8 also needs a quantised model
                    [ "${precision}" = "int8" ] && continue
                    [ "${precision}" = "fp16" ] && [ "${use_trt}" = "False" ] && continue
                    for batch_size in "${batches[@]}"; do
                        name=python_infer_gpu_usetrt_${use_trt}_precision_${precision}_batchsize_${batch_size}
                        func_infer_once "${name}" \
                            "${use_gpu_key}=gpu $(func_set_params "${use_trt_key}" "${use_trt}")" null
                    done
                done
            done
        else
            skip "inference on '${device}': unsupported device (cpu or gpu)"
        fi
    done
}

if [ "${MODE}" = "whole_infer" ]; then
    # no training: export the weights prepare.sh put at infer_model, then infer
    if [ "${infer_export}" = "null" ]; then   # PaddleSeg: infer_model is an export already
        export_dir=${infer_model}
    else
        export_dir=${LOG_PATH}/inference
        if [ ! -f "${infer_model}" ]; then
            echo "no weights at ${infer_model}: run test_tipc/prepare.sh ${1} whole_infer first" >&2
        fi
        run_step "${LOG_PATH}/export.log" "${python} ${infer_export}" \
            "$(func_set_params "${export_weight_key}" "${infer_model}")" \
            "$(func_set_params "${save_infer_key}" "${export_dir}")"
    fi
    func_inference "${python}" "${inference_py}" "${export_dir}" "${LOG_PATH}" "${infer_img_dir}"
else
    IFS='|' read -ra trainers <<< "${trainer_list}"
    for trainer in "${trainers[@]}"; do
        if ! trainer_index "${trainer}" > /dev/null; then
            known=$(printf '%s\n' "${trainer_keys[@]}" | grep -vx null | paste -sd' ')
            echo "${FILENAME}: trainer '${trainer}' (line 15 of the file, 'trainer:') is not one of this config's trainers" \
                 "(the keys of its lines 16-21: ${known}; PaddleSeg's are norm_train, pact_train, fpgm_train, distill_train)" >&2
            exit 2
        fi
    done
    IFS='|' read -ra gpus <<< "${gpu_list}"
    IFS='|' read -ra use_gpu_values <<< "${train_use_gpu_value}"
    IFS='|' read -ra autocasts <<< "${autocast_list}"
    for i in "${!gpus[@]}"; do
        gpu=${gpus[$i]}
        train_use_gpu=${use_gpu_values[$i]:-null}
        if [ "${gpu}" = "-1" ]; then
            launch=""
            export CUDA_VISIBLE_DEVICES=""
        elif [ ${GPU_PRESENT} -eq 0 ]; then
            skip "gpu_list entry '${gpu}' of ${model_name}: no GPU visible to Paddle on this machine"
            continue
        elif [[ "${gpu}" == *,* ]]; then
            launch="-m paddle.distributed.launch --gpus=${gpu}"
            unset CUDA_VISIBLE_DEVICES
        else
            launch=""
            export CUDA_VISIBLE_DEVICES=${gpu}
        fi
        for autocast in "${autocasts[@]}"; do
            for trainer in "${trainers[@]}"; do
                idx=$(trainer_index "${trainer}")
                run_train=${trainer_cmds[$idx]}
                run_export=${trainer_exports[$idx]}
                if [ "${run_train}" = "null" ]; then
                    skip "trainer '${trainer}': its command (line $((idx + 16)) of the file, '${trainer_keys[$idx]}:') is null"
                    continue
                fi
                save_log=${LOG_PATH}/${trainer}_gpus_${gpu}_autocast_${autocast}
                run_step "${save_log}_train.log" "${python} ${launch} ${run_train}" \
                    "$(func_set_params "${train_use_gpu_key}" "${train_use_gpu}")" \
                    "$(func_set_params "${save_model_key}" "${save_log}")" \
                    "$(func_set_params "${epoch_key}" "${epoch_num}")" \
                    "$(func_set_params "${pretrain_model_key}" "${pretrain_model_value}")" \
                    "$(func_set_params "${autocast_key}" "${autocast}")" \
                    "$(func_set_params "${train_batch_key}" "${train_batch_value}")" \
                    "$(func_set_params "${train_param_key1}" "${train_param_value1}")"
                weights=${save_log}/${train_model_name}
                [ -f "${weights}" ] || weights=${save_log}/iter_${epoch_num}/model.pdparams  # trained without eval
                if [ "${eval_py}" != "null" ]; then
                    run_step "${save_log}_eval.log" "${python} ${eval_py}" \
                        "$(func_set_params "${pretrain_model_key}" "${weights}")" \
                        "$(func_set_params "${train_use_gpu_key}" "${train_use_gpu}")" \
                        "$(func_set_params "${eval_key1}" "${eval_value1}")"
                fi
                if [ "${run_export}" != "null" ]; then
                    run_step "${save_log}_export.log" "${python} ${run_export}" \
                        "$(func_set_params "${export_weight_key}" "${weights}")" \
                        "$(func_set_params "${save_infer_key}" "${save_log}/inference")"
                    func_inference "${python}" "${inference_py}" "${save_log}/inference" "${LOG_PATH}" "${train_infer_img_dir}"
                fi
            done
        done
    done
    unset CUDA_VISIBLE_DEVICES
fi

if [ ${STEPS_RUN} -eq 0 ]; then
    echo "no step of ${model_name} ${MODE} ran, so nothing was tested; skipped:" >&2
    printf '  %s\n' "${SKIPPED[@]:-nothing (the config lists no trainer or inference device)}" >&2
    exit 1
fi
if [ ${FAILED_STEPS} -gt 0 ]; then
    echo "${FAILED_STEPS} step(s) of ${model_name} ${MODE} failed: see ${status_log}" >&2
    exit 1
fi
echo "all steps of ${model_name} ${MODE} passed: see ${status_log}"
