using BenchmarkDotNet.Attributes;
using FenceCore.VirtualGpu;

namespace FenceCore.Benchmarks;

/// <summary>
/// Virtual-GPU throughput: one invocation creates a GPU in virtual-time mode (default engines, no
/// checker, no subscribers), one client and eight buffers, submits 256 graphics jobs and runs the event
/// loop until idle; one operation is one job (jobs per second = 1e9 / Mean). Each job touches four
/// buffers (one write, three reads, a sliding window), so every submission takes the multi-object path
/// (acquire context, implicit sync on four reservations). Baseline: the same with one buffer per job
/// (the single-object, lock-free path). A fresh GPU per invocation keeps memory flat: finished jobs stay
/// reachable through their entity's fence history, so one long-lived GPU would grow without bound; the
/// setup is amortized over 256 jobs in both rows. Not gated: its allocation per job varies by a few
/// bytes between runs (256 jobs per invocation), and the gate fails on any allocation increase.
/// </summary>
public class GpuThroughputBenchmarks
{
    private const int Jobs = 256;
    private const int Buffers = 8;

    [Benchmark(Baseline = true, OperationsPerInvoke = Jobs)]
    public long Gpu_Jobs_OneBuffer() => RunJobs(buffersPerJob: 1);

    [Benchmark(OperationsPerInvoke = Jobs)]
    public long Gpu_Jobs_FourBuffers() => RunJobs(buffersPerJob: 4);

    private static long RunJobs(int buffersPerJob)
    {
        using var gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual });
        GpuClient client = gpu.CreateClient("bench");
        var buffers = new GpuBuffer[Buffers];
        for (int i = 0; i < Buffers; i++)
        {
            buffers[i] = gpu.CreateBuffer(64 * 1024);
        }

        var accesses = new BufferAccess[buffersPerJob];
        for (int j = 0; j < Jobs; j++)
        {
            for (int b = 0; b < buffersPerJob; b++)
            {
                accesses[b] = new BufferAccess(buffers[(j + b) % Buffers], Write: b == 0);
            }

            client.Submit(new JobDescription { Buffers = [.. accesses], Duration = TimeSpan.FromMicroseconds(1) });
        }

        gpu.RunUntilIdle();
        // The memory manager's placement jobs (clears on the copy engine) count too.
        if (gpu.JobsCompleted != gpu.JobsSubmitted || gpu.JobsCompleted < Jobs)
        {
            throw new InvalidOperationException($"{gpu.JobsCompleted} of {gpu.JobsSubmitted} jobs completed");
        }

        return gpu.JobsCompleted;
    }
}
