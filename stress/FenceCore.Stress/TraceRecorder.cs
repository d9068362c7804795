using System.Text.Json;
using FenceCore.VirtualGpu;

namespace FenceCore.Stress;

/// <summary>Records jobs as Chrome trace events (one track per engine) for Perfetto or chrome://tracing.</summary>
internal sealed class TraceRecorder(Gpu gpu, int limit)
{
    private readonly List<(long Id, string Name, int Engine, long StartNs, long EndNs, int Error, bool Kernel)> _jobs = [];

    public int Count
    {
        get
        {
            lock (_jobs)
            {
                return _jobs.Count;
            }
        }
    }

    /// <summary>What the recorded events hold on the heap, roughly (a tuple of 56 B and its name), for the
    /// retained-heap invariant.</summary>
    public long RetainedBytesEstimate => Count * 160L;

    public void Record(GpuJob job)
    {
        lock (_jobs)
        {
            if (_jobs.Count >= limit || job.StartNs < 0 || job.StartNs > long.MaxValue / 8)
            {
                return;
            }

            long end = job.Finished.TryGetTimestamp(out long ts) ? Math.Max(ts, job.StartNs) : job.StartNs;
            _jobs.Add((job.Id, job.Description.Label ?? (job.IsKernelJob ? "kernel" : "job"), job.Engine.Index, job.StartNs, end, job.Finished.Error, job.IsKernelJob));
        }
    }

    public void Write(string path)
    {
        using FileStream stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartObject();
        w.WriteString("displayTimeUnit", "ns");
        w.WriteStartArray("traceEvents");
        w.WriteStartObject();
        w.WriteString("name", "process_name");
        w.WriteString("ph", "M");
        w.WriteNumber("pid", 1);
        w.WriteStartObject("args");
        w.WriteString("name", $"virtual GPU ({gpu.Config.Mode})");
        w.WriteEndObject();
        w.WriteEndObject();
        foreach (Engine e in gpu.Engines)
        {
            w.WriteStartObject();
            w.WriteString("name", "thread_name");
            w.WriteString("ph", "M");
            w.WriteNumber("pid", 1);
            w.WriteNumber("tid", e.Index);
            w.WriteStartObject("args");
            w.WriteString("name", $"{e.Name} ({e.Kind})");
            w.WriteEndObject();
            w.WriteEndObject();
        }

        lock (_jobs)
        {
            foreach (var j in _jobs)
            {
                w.WriteStartObject();
                w.WriteString("name", j.Name);
                w.WriteString("cat", j.Kernel ? "kernel" : j.Error < 0 ? "error" : "job");
                w.WriteString("ph", "X");
                w.WriteNumber("pid", 1);
                w.WriteNumber("tid", j.Engine);
                w.WriteNumber("ts", j.StartNs / 1000.0);
                w.WriteNumber("dur", (j.EndNs - j.StartNs) / 1000.0);
                w.WriteStartObject("args");
                w.WriteNumber("job", j.Id);
                w.WriteString("status", j.Error < 0 ? Errno.Name(j.Error) : "ok");
                w.WriteEndObject();
                w.WriteEndObject();
            }
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }
}
