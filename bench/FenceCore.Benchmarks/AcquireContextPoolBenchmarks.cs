using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.ObjectPool;

namespace FenceCore.Benchmarks;

/// <summary>
/// Should the virtual GPU pool its per-submission <see cref="ReservationAcquireContext"/> with
/// <c>Microsoft.Extensions.ObjectPool</c>? The candidate is <c>Gpu.Submit</c>'s multi-buffer path: a
/// context per job locks four reservation objects and releases them. Baseline: unpooled, a new
/// context each time (as the library does). Pooled: <see cref="DefaultObjectPool{T}"/> Get and Return
/// around the same work, plus one interlocked increment standing in for the fresh wait-die stamp a
/// reused context would need (a stamp must be younger than every live context). Pooling stays out of
/// the library unless the pooled row is faster.
/// </summary>
public class AcquireContextPoolBenchmarks
{
    private const int N = Suites.OpsPerInvoke;
    private static long s_stamp;
    private readonly Reservation[] _objects = [new("a"), new("b"), new("c"), new("d")];
    private readonly ObjectPool<ReservationAcquireContext> _pool =
        new DefaultObjectPool<ReservationAcquireContext>(new DefaultPooledObjectPolicy<ReservationAcquireContext>());

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public int Unpooled_LockFourUnlock()
    {
        int held = 0;
        for (int i = 0; i < N; i++)
        {
            using var ctx = new ReservationAcquireContext();
            ctx.LockAll(_objects);
            held += ctx.Held.Count;
            ctx.UnlockAll();
        }

        return held;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public int ObjectPool_LockFourUnlock()
    {
        ObjectPool<ReservationAcquireContext> pool = _pool;
        int held = 0;
        for (int i = 0; i < N; i++)
        {
            ReservationAcquireContext ctx = pool.Get();
            Interlocked.Increment(ref s_stamp); // the stamp renewal a pooled context would need
            ctx.LockAll(_objects);
            held += ctx.Held.Count;
            ctx.UnlockAll();
            pool.Return(ctx);
        }

        return held;
    }
}
