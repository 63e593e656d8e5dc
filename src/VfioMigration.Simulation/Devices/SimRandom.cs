using System;
using System.Buffers.Binary;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// The simulator's own pseudo-random sequence (SplitMix64). System.Random's algorithm is not promised to
/// stay the same across .NET versions; this one is, so a seed gives the same pages and state bytes on
/// every runtime the module supports.
/// </summary>
internal struct SimRandom
{
    private ulong _state;

    public SimRandom(ulong seed) => _state = seed;

    /// <summary>A seed for an independent sequence derived from a device seed and a purpose.</summary>
    public static ulong Derive(long seed, ulong purpose, ulong index = 0)
    {
        var r = new SimRandom(unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ purpose * 0xC2B2AE3D27D4EB4FUL ^ index * 0x165667B19E3779F9UL));
        return r.Next();
    }

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A value in [0, <paramref name="bound"/>); <paramref name="bound"/> must be positive.</summary>
    public ulong Below(ulong bound)
    {
        if (bound == 0) throw new ArgumentOutOfRangeException(nameof(bound));
        return Next() % bound;
    }

    public void Fill(Span<byte> destination)
    {
        // Whole words straight into the destination (the simulator reads megabytes of state this way).
        int i = 0;
        for (; i + 8 <= destination.Length; i += 8) BinaryPrimitives.WriteUInt64LittleEndian(destination.Slice(i), Next());
        if (i == destination.Length) return;
        Span<byte> word = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(word, Next());
        word.Slice(0, destination.Length - i).CopyTo(destination.Slice(i));
    }
}
