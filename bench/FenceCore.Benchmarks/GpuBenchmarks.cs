using BenchmarkDotNet.Attributes;
using FenceCore.VirtualGpu;

namespace FenceCore.Benchmarks;

/// <summary>
/// Virtual-GPU throughput, per job: one GPU in virtual-time mode (default engines, no checker, no
/// subscribers), one client and eight buffers, made once in the setup; one invocation submits 256 graphics
/// jobs and runs the event loop until idle, so one operation is one job (jobs per second = 1e9 / Mean).
/// Each job touches four buffers (one write, three reads, a sliding window), so every submission takes
/// the multi-object path (acquire context, implicit sync on four reservations). Baseline: the same with
/// one buffer per job (the single-object, lock-free path).
/// </summary>
/// <remarks>
/// The GPU lives for the whole run: a finished job is released by everything that held it (its entity,
/// its buffers' reservations, its dependants), so the live heap stays flat however many jobs run (about
/// 100 KiB after 600,000 jobs), and every invocation allocates exactly the same bytes, which the gate
/// checks (<c>bench/baseline.json</c>). The job descriptions are built in the invocation, as a simulator
/// would build them; their buffer list is one array the description copies.
/// </remarks>
[BenchmarkCategory(Suites.Gate)]
public class GpuThroughputBenchmarks
{
    private const int Jobs = 256;
    private const int Buffers = 8;
    private readonly BufferAccess[] _accesses1 = new BufferAccess[1];
    private readonly BufferAccess[] _accesses4 = new BufferAccess[4];
    private Gpu _gpu = null!;
    private GpuClient _client = null!;
    private GpuBuffer[] _buffers = null!;

    [GlobalSetup]
    public void Setup()
    {
        _gpu = new Gpu(new GpuConfig { Mode = GpuTimeMode.Virtual });
        _client = _gpu.CreateClient("bench");
        _buffers = new GpuBuffer[Buffers];
        for (int i = 0; i < Buffers; i++)
        {
            _buffers[i] = _gpu.CreateBuffer(64 * 1024);
        }

        // Placement happens at a buffer's first use: one job on every buffer makes them resident (their
        // clears run now), so the measured jobs are the client's alone.
        _client.Submit(new JobDescription { Buffers = [.. _buffers.Select(b => new BufferAccess(b, Write: true))] });
        _gpu.RunUntilIdle();
    }

    [GlobalCleanup]
    public void Cleanup() => _gpu.Dispose();

    [Benchmark(Baseline = true, OperationsPerInvoke = Jobs)]
    public long Gpu_Jobs_OneBuffer() => RunJobs(_accesses1);

    [Benchmark(OperationsPerInvoke = Jobs)]
    public long Gpu_Jobs_FourBuffers() => RunJobs(_accesses4);

    private long RunJobs(BufferAccess[] accesses)
    {
        long before = _gpu.JobsCompleted;
        for (int j = 0; j < Jobs; j++)
        {
            for (int b = 0; b < accesses.Length; b++)
            {
                accesses[b] = new BufferAccess(_buffers[(j + b) % Buffers], Write: b == 0);
            }

            _client.Submit(new JobDescription { Buffers = accesses, Duration = TimeSpan.FromMicroseconds(1) });
        }

        _gpu.RunUntilIdle();
        long done = _gpu.JobsCompleted - before;
        if (done != Jobs || _gpu.JobsCompleted != _gpu.JobsSubmitted)
        {
            throw new InvalidOperationException($"{done} of {Jobs} jobs completed ({_gpu.JobsCompleted} of {_gpu.JobsSubmitted} in all)");
        }

        return done;
    }
}
