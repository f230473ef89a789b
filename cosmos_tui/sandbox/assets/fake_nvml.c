/*
 * A stand-in for NVIDIA's NVML (libnvidia-ml.so.1) on machines without a GPU.
 *
 * Ray's dashboard agent reads every node's GPUs through NVML (pynvml, in
 * ray/dashboard/modules/reporter/gpu_providers.py); this library answers the calls it
 * makes with the GPUs listed in the file named by $COSMOS_FAKE_NVML, read again on every
 * call, one GPU per line:
 *
 *     <utilization %> <memory used MiB> <memory total MiB> <name>
 *
 * A missing or empty file means "no GPU". Calls not implemented here are absent, and
 * pynvml reports them as NVML_ERROR_FUNCTION_NOT_FOUND, as with an old driver.
 * It is a test double, like the nvidia-smi stand-in (tests/ray/conftest.py builds it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVML_SUCCESS 0
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define MAX_GPUS 16

typedef struct {
    unsigned int utilization;
    unsigned long long used_mib;
    unsigned long long total_mib;
    char name[64];
} fake_gpu;

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvml_memory;

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvml_utilization;

static fake_gpu gpus[MAX_GPUS];
static int handles[MAX_GPUS];

static int read_gpus(void) {
    const char *path = getenv("COSMOS_FAKE_NVML");
    FILE *file = path ? fopen(path, "r") : NULL;
    int count = 0;
    if (!file) {
        return 0;
    }
    while (count < MAX_GPUS) {
        fake_gpu *gpu = &gpus[count];
        if (fscanf(file, "%u %llu %llu %63[^\n]", &gpu->utilization, &gpu->used_mib,
                   &gpu->total_mib, gpu->name) != 4) {
            break;
        }
        count++;
    }
    fclose(file);
    return count;
}

static fake_gpu *gpu_of(void *device) {
    int index = *(int *)device;
    return index < read_gpus() ? &gpus[index] : NULL;
}

int nvmlInit_v2(void) { return NVML_SUCCESS; }
int nvmlInitWithFlags(unsigned int flags) { (void)flags; return NVML_SUCCESS; }
int nvmlShutdown(void) { return NVML_SUCCESS; }
const char *nvmlErrorString(int result) { return result ? "fake NVML error" : "Success"; }

int nvmlDeviceGetCount_v2(unsigned int *count) {
    *count = (unsigned int)read_gpus();
    return NVML_SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) {
    if (index >= (unsigned int)read_gpus()) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    handles[index] = (int)index;
    *device = &handles[index];
    return NVML_SUCCESS;
}

int nvmlDeviceGetName(void *device, char *name, unsigned int length) {
    fake_gpu *gpu = gpu_of(device);
    if (!gpu || length == 0) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    snprintf(name, length, "%s", gpu->name);
    return NVML_SUCCESS;
}

int nvmlDeviceGetUUID(void *device, char *uuid, unsigned int length) {
    if (!gpu_of(device) || length == 0) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    snprintf(uuid, length, "GPU-fake0000-0000-0000-0000-%012d", *(int *)device);
    return NVML_SUCCESS;
}

int nvmlDeviceGetMemoryInfo(void *device, nvml_memory *memory) {
    fake_gpu *gpu = gpu_of(device);
    if (!gpu) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    memory->total = gpu->total_mib * 1024ULL * 1024ULL;
    memory->used = gpu->used_mib * 1024ULL * 1024ULL;
    memory->free = memory->total > memory->used ? memory->total - memory->used : 0;
    return NVML_SUCCESS;
}

int nvmlDeviceGetUtilizationRates(void *device, nvml_utilization *rates) {
    fake_gpu *gpu = gpu_of(device);
    if (!gpu) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    rates->gpu = gpu->utilization;
    rates->memory = 0;
    return NVML_SUCCESS;
}

static int no_processes(void *device, unsigned int *count) {
    if (!gpu_of(device)) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    *count = 0;
    return NVML_SUCCESS;
}

int nvmlDeviceGetComputeRunningProcesses_v3(void *device, unsigned int *count, void *infos) {
    (void)infos;
    return no_processes(device, count);
}

int nvmlDeviceGetGraphicsRunningProcesses_v3(void *device, unsigned int *count, void *infos) {
    (void)infos;
    return no_processes(device, count);
}

int nvmlDeviceGetMigMode(void *device, unsigned int *current, unsigned int *pending) {
    (void)device;
    (void)current;
    (void)pending;
    return NVML_ERROR_NOT_SUPPORTED;
}
