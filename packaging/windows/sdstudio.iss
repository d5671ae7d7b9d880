; Inno Setup script for the Windows installer (a sketch: not tested, no Windows machine here).
; Build the folder first on Windows, from the repository root:
;   .venv\Scripts\pyinstaller --noconfirm --distpath packaging\dist --workpath packaging\build packaging\sdstudio.spec
; then compile this script with Inno Setup 6:  iscc packaging\windows\sdstudio.iss
; Output: packaging\dist\sdstudio-<version>-setup.exe (per-user install, no admin rights needed).

#define AppName "sdstudio"
#define AppVersion "0.1.0"
#define DistDir "..\dist\sdstudio"

[Setup]
AppId={{6F1C2B7E-3D4A-4F7B-9E51-5D2C8A9B0C11}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=sdstudio developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\dist
OutputBaseFilename={#AppName}-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\sdstudio.ico
UninstallDisplayIcon={app}\sdstudio.exe
Compression=lzma2/max
SolidCompression=yes
; torch alone is over 2 GB unpacked on Windows: a 64-bit, disk-spanning-free installer is fine.
DiskSpanning=no

[Files]
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\sdstudio.exe"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\sdstudio.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop icon"; Flags: unchecked

[Run]
; Check the installation works, then offer to start the app.
Filename: "{app}\sdstudio.exe"; Parameters: "--self-test"; StatusMsg: "Checking the installation..."; Flags: runhidden waituntilterminated
Filename: "{app}\sdstudio.exe"; Description: "Start {#AppName}"; Flags: nowait postinstall skipifsilent
