#!/bin/bash
# Helpers of the TIPC scripts, in the format of PaddleSeg's test_tipc/common_func.sh:
# a config line is "key:value"; "null" means "leave this out"; a value can be given per
# mode as "lite_train_lite_infer=20|whole_train_whole_infer=100".

function func_parser_key() {      # "key:value" -> key
    echo "${1%%:*}"
}

function func_parser_value() {    # "key:value" -> value (everything after the first ':')
    local line=$1
    if [[ "${line}" != *:* ]]; then echo ""; return; fi
    echo "${line#*:}"
}

function func_set_params() {      # key value -> "key=value", or " " when either is null/empty
    local key=$1 value=$2
    if [ "${key}" = "null" ] || [ -z "${key}" ] || [ "${value}" = "null" ] || [ -z "${value// /}" ]; then
        echo " "
    else
        echo "${key}=${value}"
    fi
}

function func_parser_params() {   # "key:mode1=v1|mode2=v2" -> the value for ${MODE}
    local value entry
    value=$(func_parser_value "$1")
    IFS='|' read -ra entries <<< "${value}"
    for entry in "${entries[@]}"; do
        if [ "${entry%%=*}" = "${MODE}" ]; then
            echo "${entry#*=}"
            return
        fi
    done
    echo ""
}

FAILED_STEPS=0
STEPS_RUN=0   # every command status_check records; a run with none has tested nothing

function status_check() {         # exit_code command results_log model_name
    local last_status=$1 run_command=$2 run_log=$3 model_name=$4
    STEPS_RUN=$((STEPS_RUN + 1))
    if [ "${last_status}" -eq 0 ]; then
        echo -e "\033[33m Run successfully with command - ${model_name} - ${run_command}!  \033[0m" | tee -a "${run_log}"
    else
        echo -e "\033[33m Run failed with command - ${model_name} - ${run_command}!  \033[0m" | tee -a "${run_log}"
        FAILED_STEPS=$((FAILED_STEPS + 1))
    fi
}

function has_gpu() {              # exit 0 when Paddle sees a CUDA device
    "${1:-python}" -c "import paddle, sys; sys.exit(0 if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else 1)" > /dev/null 2>&1
}
