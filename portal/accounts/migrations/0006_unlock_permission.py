from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_totp_device'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='portalpermission',
            options={'default_permissions': (), 'managed': False, 'permissions': [('view_directory', 'Read on-premises Active Directory (Directory pages)'), ('view_dl_migration', 'Use the DL migration area'), ('view_address_repair', 'Use the address repair area'), ('view_mfa_report', 'Read the MFA registration report'), ('view_writeback_plan', 'Read writeback rename plans'), ('manage_lab', 'Run the rehearsal lab (lab mode only)'), ('unlock_sign_in', 'See locked-out local sign-ins and unlock them')]},
        ),
    ]
