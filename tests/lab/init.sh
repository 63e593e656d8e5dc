#!/bin/sh
# /init of the lab's initramfs (busybox). Mounts the basics, brings up lo (the .NET tools talk over
# 127.0.0.1), loads the modules in dependency order, mounts the writable 9p share 'lab', runs the guest
# script from it and powers off, whatever happened: QEMU runs with -no-reboot, so power-off ends it.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
uptime_s() { cut -d' ' -f1 /proc/uptime; }
T_INIT=$(uptime_s)
echo "LAB: init started, uptime $T_INIT s, kernel $(uname -r)"
ip link set lo up

for m in $(cat /lib/modules/load-order); do
    insmod "/lib/modules/$m" || echo "LAB: insmod $m failed"
done
T_MODULES=$(uptime_s)
echo "LAB: modules loaded, uptime $T_MODULES s"

if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 lab /mnt/lab; then
    {
        echo "T_INIT=$T_INIT"
        echo "T_MODULES=$T_MODULES"
    } > /mnt/lab/init-timings.env
    if [ -f /mnt/lab/guest.sh ]; then
        sh /mnt/lab/guest.sh
        echo "LAB: guest.sh exit status $?"
    else
        echo "LAB: /mnt/lab/guest.sh is missing"
    fi
    sync
else
    echo "LAB: could not mount the 9p share 'lab'"
fi
echo "LAB: done, uptime $(uptime_s) s"
poweroff -f
