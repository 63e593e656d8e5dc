using System;

namespace VfioMigration.Core.Simulation.Devices;

/// <summary>
/// The serial ports of the kernel's mtty sample (samples/vfio-mdev/mtty.c) as far as migration can see
/// them: each port is mtty.c's <c>struct serial_port</c> as the compiler lays it out (36 bytes), held
/// here in exactly those bytes, because the device's migration stream is a copy of them
/// (mtty_save_state / mtty_load_state memcpy the structs). A guest, or a person with the device fd,
/// changes them through the 8-byte I/O BARs (BAR0 port 0, BAR1 port 1): the register semantics below are
/// mtty.c's handle_bar_write / handle_bar_read, a 16550-like UART whose transmit FIFO loops back to
/// receive.
/// </summary>
internal sealed class SimMttyPorts
{
    /// <summary>sizeof(struct serial_port).</summary>
    public const int PortSize = 36;

    /// <summary>offsetof(struct mtty_data, ports): magic u64, major u32, minor u32, nr_ports u32, flags u32.</summary>
    public const int HeaderSize = 24;

    /// <summary>MAX_FIFO_SIZE.</summary>
    public const int MaxFifoSize = 16;

    // struct serial_port { u8 uart_reg[8]; struct rxtx { u8 fifo[16]; u8 head, tail, count; } rxtx;
    //                      bool dlab; bool overrun; /* pad */ u16 divisor; u8 fcr; u8 max_fifo_size;
    //                      u8 intr_trigger_level; /* pad */ }
    private const int UartReg = 0, Fifo = 8, Head = 24, Tail = 25, Count = 26, Dlab = 27, Overrun = 28;
    private const int Divisor = 30, Fcr = 32, MaxFifo = 33, TriggerLevel = 34;

    // include/uapi/linux/serial_reg.h
    private const int UART_TX = 0, UART_IER = 1, UART_FCR = 2, UART_LCR = 3, UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7;
    private const byte UART_IER_MSI = 0x08, UART_IER_RLSI = 0x04, UART_IER_THRI = 0x02, UART_IER_RDI = 0x01;
    private const byte UART_IIR_NO_INT = 0x01, UART_IIR_MSI = 0x00, UART_IIR_THRI = 0x02, UART_IIR_RDI = 0x04, UART_IIR_RLSI = 0x06;
    private const byte UART_FCR_ENABLE_FIFO = 0x01, UART_FCR_CLEAR_RCVR = 0x02, UART_FCR_CLEAR_XMIT = 0x04;
    private const byte UART_LCR_DLAB = 0x80;
    private const byte UART_MCR_AFE = 0x20, UART_MCR_RTS = 0x02, UART_MCR_DTR = 0x01;
    private const byte UART_LSR_TEMT = 0x40, UART_LSR_THRE = 0x20, UART_LSR_OE = 0x02, UART_LSR_DR = 0x01;
    private const byte UART_MSR_DCD = 0x80, UART_MSR_DSR = 0x20, UART_MSR_CTS = 0x10, UART_MSR_DDSR = 0x02, UART_MSR_DCTS = 0x01;

    // mdev_state->s[2]: mtty-1 has a second port too, written through BAR1 but never saved.
    private readonly byte[] _ports = new byte[2 * PortSize];

    public SimMttyPorts(int nrPorts)
    {
        if (nrPorts is not (1 or 2)) throw new ArgumentOutOfRangeException(nameof(nrPorts));
        NrPorts = nrPorts;
        // mtty_init_dev: both ports start with max_fifo_size = MAX_FIFO_SIZE, everything else zero.
        _ports[MaxFifo] = MaxFifoSize;
        _ports[PortSize + MaxFifo] = MaxFifoSize;
    }

    /// <summary>
    /// The ports as mtty_init_dev leaves them, except for each port's scratch register (UART_SCR, a byte the
    /// UART never interprets), which holds <paramref name="scratch"/>: a re-initialised device that can be
    /// told from the one before (SimDefect.StateLostOnStopToRunning).
    /// </summary>
    public void Reinitialise(byte scratch)
    {
        Array.Clear(_ports);
        for (int port = 0; port < 2; port++)
        {
            _ports[port * PortSize + MaxFifo] = MaxFifoSize;
            _ports[port * PortSize + UartReg + UART_SCR] = scratch;
        }
    }

    /// <summary>Ports the device has (mtty-1: 1, mtty-2: 2): the header's nr_ports.</summary>
    public int NrPorts { get; }

    /// <summary>mtty_data_size: the whole stream.</summary>
    public int StateSize => HeaderSize + NrPorts * PortSize;

    /// <summary>The saved ports, in stream layout (the state image's body).</summary>
    public Memory<byte> Saved => _ports.AsMemory(0, NrPorts * PortSize);

    /// <summary>handle_bar_write: the guest writes <paramref name="data"/> to register <paramref name="offset"/> of port <paramref name="port"/>.</summary>
    public void Write(int port, long offset, byte data)
    {
        var s = _ports.AsSpan(port * PortSize, PortSize);
        switch (offset)
        {
            case UART_TX:
                if (s[Dlab] != 0)
                {
                    SetDivisor(s, (ushort)(GetDivisor(s) | data)); // divisor LSB
                    break;
                }
                if (s[Count] < s[MaxFifo])
                {
                    s[Fifo + s[Head]] = data;
                    s[Count]++;
                    s[Head] = (byte)((s[Head] + 1) & (MaxFifoSize - 1));
                    s[Overrun] = 0;
                }
                else
                {
                    s[Overrun] = 1;
                }
                break;
            case UART_IER:
                if (s[Dlab] != 0) SetDivisor(s, (ushort)(GetDivisor(s) | (data << 8))); // divisor MSB
                else s[UartReg + UART_IER] = data;
                break;
            case UART_FCR:
                s[Fcr] = data;
                if ((data & (UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT)) != 0)
                {
                    s[Count] = 0;
                    s[Head] = 0;
                    s[Tail] = 0;
                }
                // mtty.c decodes the trigger bits and then sets the level to 1 whatever they said.
                s[TriggerLevel] = 1;
                s[MaxFifo] = (data & UART_FCR_ENABLE_FIFO) != 0 ? (byte)MaxFifoSize : (byte)1;
                break;
            case UART_LCR:
                if ((data & UART_LCR_DLAB) != 0)
                {
                    s[Dlab] = 1;
                    SetDivisor(s, 0);
                }
                else
                {
                    s[Dlab] = 0;
                }
                s[UartReg + UART_LCR] = data;
                break;
            case UART_MCR:
            case UART_SCR:
                s[UartReg + (int)offset] = data;
                break;
            default:
                break; // LSR, MSR and offsets past the registers: ignored
        }
    }

    /// <summary>handle_bar_read: the byte the guest reads from register <paramref name="offset"/> of port <paramref name="port"/> (reading RX takes a byte from the FIFO).</summary>
    public byte Read(int port, long offset)
    {
        var s = _ports.AsSpan(port * PortSize, PortSize);
        bool empty = s[Head] == s[Tail];
        byte ier = s[UartReg + UART_IER];
        switch (offset)
        {
            case UART_TX: // RX
                if (s[Dlab] != 0) return (byte)GetDivisor(s);
                if (empty) return 0; // mtty.c leaves the byte unset; the simulator answers 0
                byte value = s[Fifo + s[Tail]];
                s[Count]--;
                s[Tail] = (byte)((s[Tail] + 1) & (MaxFifoSize - 1));
                return value;
            case UART_IER:
                if (s[Dlab] != 0) return (byte)(GetDivisor(s) >> 8);
                return (byte)(ier & 0x0f);
            case UART_FCR: // IIR
            {
                byte iir = 0;
                if ((ier & UART_IER_RLSI) != 0 && s[Overrun] != 0) iir |= UART_IIR_RLSI;
                if ((ier & UART_IER_RDI) != 0 && s[Count] >= s[TriggerLevel]) iir |= UART_IIR_RDI;
                if ((ier & UART_IER_THRI) != 0 && empty) iir |= UART_IIR_THRI;
                if ((ier & UART_IER_MSI) != 0 && (s[UartReg + UART_MCR] & (UART_MCR_RTS | UART_MCR_DTR)) != 0) iir |= UART_IIR_MSI;
                if (iir == 0) iir = UART_IIR_NO_INT;
                return (byte)(iir | 0xc0);
            }
            case UART_LCR:
            case UART_MCR:
            case UART_SCR:
                return s[UartReg + (int)offset];
            case UART_LSR:
            {
                byte lsr = 0;
                if (!empty) lsr |= UART_LSR_DR;
                if (s[Overrun] != 0) lsr |= UART_LSR_OE;
                if (empty) lsr |= UART_LSR_TEMT | UART_LSR_THRE;
                return lsr;
            }
            case UART_MSR:
            {
                byte msr = UART_MSR_DSR | UART_MSR_DDSR | UART_MSR_DCD;
                // With AFE set, CTS only while the FIFO has room; mtty.c sets it without AFE too.
                if ((s[UartReg + UART_MCR] & UART_MCR_AFE) == 0 || s[Count] < s[MaxFifo]) msr |= UART_MSR_CTS | UART_MSR_DCTS;
                return msr;
            }
            default:
                return 0; // past the registers: mtty.c leaves the byte unset
        }
    }

    private static ushort GetDivisor(Span<byte> s) => (ushort)(s[Divisor] | (s[Divisor + 1] << 8));

    private static void SetDivisor(Span<byte> s, ushort value)
    {
        s[Divisor] = (byte)value;
        s[Divisor + 1] = (byte)(value >> 8);
    }
}
