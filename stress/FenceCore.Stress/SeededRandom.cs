namespace FenceCore.Stress;

/// <summary>
/// The workload's random numbers: the same sequence, for the same seed, as <c>new System.Random(seed)</c>, whose
/// seeded generator is Knuth's subtractive method (a lagged Fibonacci generator over 55 words, drawn modulo
/// 2^31 - 1). A run's digest depends on every draw, so the sequence must not change.
/// </summary>
/// <remarks>
/// PERF: <see cref="Random"/> reaches its seeded generator through two virtual calls per draw, about twenty
/// draws per job. This type is sealed and its draws inline. <c>SeededRandomTests</c> compares every method used
/// here with <see cref="Random"/>'s, draw by draw, over many seeds and ranges. Not thread-safe, as
/// <see cref="Random"/> is not: each thread of a threads-mode run has its own.
/// </remarks>
internal sealed class SeededRandom
{
    private const int Modulus = int.MaxValue;
    private const int SeedBase = 161803398; // Knuth's MSEED

    private readonly int[] _words = new int[56]; // indices 1..55; 0 is unused, as in the method's description
    private int _next;
    private int _nextLagged = 21;

    public SeededRandom(int seed)
    {
        int mj = SeedBase - (seed == int.MinValue ? int.MaxValue : Math.Abs(seed));
        _words[55] = mj;
        int mk = 1;
        int at = 0;
        for (int i = 1; i < 55; i++)
        {
            at += 21;
            if (at >= 55)
            {
                at -= 55;
            }

            _words[at] = mk;
            mk = mj - mk;
            if (mk < 0)
            {
                mk += Modulus;
            }

            mj = _words[at];
        }

        for (int round = 1; round < 5; round++)
        {
            for (int i = 1; i < 56; i++)
            {
                int j = i + 30;
                if (j >= 55)
                {
                    j -= 55;
                }

                int w = _words[i] - _words[1 + j];
                _words[i] = w < 0 ? w + Modulus : w;
            }
        }
    }

    /// <summary>A number in [0, <paramref name="maxValue"/>).</summary>
    public int Next(int maxValue) => (int)(Sample() * maxValue);

    /// <summary>A number in [<paramref name="minValue"/>, <paramref name="maxValue"/>).</summary>
    public int Next(int minValue, int maxValue)
    {
        long range = (long)maxValue - minValue;
        return range <= int.MaxValue
            ? (int)(Sample() * range) + minValue
            : (int)((long)(SampleForLargeRange() * range) + minValue);
    }

    /// <summary>A number in [0, 1).</summary>
    public double NextDouble() => Sample();

    /// <summary>A number in [<paramref name="minValue"/>, <paramref name="maxValue"/>): the smallest power of two at
    /// least the range, filled with random bits, drawn again until the value falls inside.</summary>
    public long NextInt64(long minValue, long maxValue)
    {
        ulong range = (ulong)(maxValue - minValue);
        if (range <= 1)
        {
            return minValue;
        }

        int bits = System.Numerics.BitOperations.Log2(range - 1) + 1;
        while (true)
        {
            ulong value = NextBits64() >> (64 - bits);
            if (value < range)
            {
                return (long)value + minValue;
            }
        }
    }

    /// <summary>64 random bits, from three draws of 22, 22 and 20 bits.</summary>
    private ulong NextBits64() =>
        (ulong)(uint)Next(1 << 22) | ((ulong)(uint)Next(1 << 22) << 22) | ((ulong)(uint)Next(1 << 20) << 44);

    private double Sample() => Draw() * (1.0 / Modulus);

    /// <summary>For a range wider than an int: two draws, the first giving the sign of a 31-bit value.</summary>
    private double SampleForLargeRange()
    {
        int result = Draw();
        if (Draw() % 2 == 0)
        {
            result = -result;
        }

        double d = result;
        d += int.MaxValue - 1;
        d /= 2.0 * int.MaxValue - 1;
        return d;
    }

    /// <summary>One step of the generator: the difference of two words 21 apart, kept in [0, 2^31 - 1).</summary>
    private int Draw()
    {
        int next = _next + 1;
        if (next >= 56)
        {
            next = 1;
        }

        int lagged = _nextLagged + 1;
        if (lagged >= 56)
        {
            lagged = 1;
        }

        int[] words = _words;
        int value = words[next] - words[lagged];
        if (value == Modulus)
        {
            value--;
        }

        if (value < 0)
        {
            value += Modulus;
        }

        words[next] = value;
        _next = next;
        _nextLagged = lagged;
        return value;
    }
}
